"""The lint engine and what surrounds it: settings, the structure check
(ISM001), output formats, safe fixes and the rule documentation.
"""
