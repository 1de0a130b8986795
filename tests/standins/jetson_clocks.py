"""A stand-in `jetson_clocks --show` of an Orin Nano with its clocks locked (jetson_clocks pins MinFreq to
MaxFreq); UNLOCKED beside it plays a board where jetson_clocks has not run."""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
locked = not os.path.exists(os.path.join(HERE, "UNLOCKED"))
if sys.argv[1:] != ["--show"]:
    sys.exit("jetson_clocks stand-in: only --show")
print("SOC family:tegra234  Machine:NVIDIA Jetson Orin Nano Engineering Reference Developer Kit Super")
print("Online CPUs: 0-5")
for cpu in range(6):
    low = 1728000 if locked else 729600
    print("cpu%d: Online=1 Governor=schedutil MinFreq=%d MaxFreq=1728000 CurrentFreq=1728000 IdleStates: WFI=0 "
          "c7=0" % (cpu, low))
print("GPU MinFreq=%d MaxFreq=1020000000 CurrentFreq=1020000000" % (1020000000 if locked else 306000000))
print("EMC MinFreq=204000000 MaxFreq=3199000000 CurrentFreq=3199000000 FreqOverride=%d" % (1 if locked else 0))
print("FAN Dynamic Speed Control=nvfancontrol hwmon0_pwm=97")
print("NV Power Mode: MAXN_SUPER")
