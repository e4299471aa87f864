"""Legacy (ACRN v2.2-v2.7) scenarios and launch XMLs converted to the v3
format.
"""
