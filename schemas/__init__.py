"""XSD schemas for the parts of ACRN XML files that acrn-shm checks."""
