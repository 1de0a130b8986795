"""Device side: the runner pushed to devices that have Python (ort_runner.py), and the parsers of device facts
(tegrastats, jetson_release, /proc/cpuinfo, /proc/meminfo, vcgencmd, getprop, build.prop)."""
