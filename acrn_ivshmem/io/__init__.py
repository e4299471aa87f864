"""Reading and writing files: safe XML parsing that keeps positions, special
files refused, locked atomic writes. The bottom of the configuration side.
"""
