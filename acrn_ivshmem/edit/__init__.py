"""Region edits that keep every other byte of the file, and the gate that
refuses an edit adding an error.
"""
