"""The configuration as data: the syntax model (values keep their text and
position), its loaders, and the readers of launch scripts.
"""
