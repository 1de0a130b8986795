"""App bundles: models + manifest.json + a reference consumer + sample code (make.py)."""
