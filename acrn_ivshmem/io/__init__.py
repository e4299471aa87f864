"""Reading and writing files: safe XML parsing that keeps positions, special
files refused, locked atomic writes, and the one byte-range text editor
(``textedit``) that fixes, region edits and the upgrade merge share. The
bottom of the configuration side.
"""
