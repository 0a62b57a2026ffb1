"""Data (§3): ISPRS archives, synthetic ISPRS-like scenes, normalised rasters."""
