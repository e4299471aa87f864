"""Emitters: files and command lines built from the model."""
