"""Device profiles: data, one YAML file per device kind. Installed as `edgekit.profiles` (see setup.cfg) so
the files ship with the package; this file only makes the folder importable for locating them."""
