"""The host's runtime side: the ivshmem server, the memory it hands out and a
checked client. Standard library only; nothing here reads a scenario.
"""
