"""A stand-in `tegrastats` (Jetson Orin Nano, JetPack 6 line format: timestamp, RAM, CPU, EMC/GR3D with per-GPC
clocks, temperatures, VDD_IN / VDD_CPU_GPU_CV / VDD_SOC rails in mW). It prints one line per --interval until it
is stopped, idle unless the stand-in trtexec has marked the GPU busy (the BUSY file beside it)."""
import os
import signal
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def line(busy):
    stamp = time.strftime("%m-%d-%Y %H:%M:%S")
    if busy:
        gpu, rails, temp = "GR3D_FREQ 87%@[624,624]", "VDD_IN 9120mW/7010mW VDD_CPU_GPU_CV 3410mW/2250mW VDD_SOC 2105mW/1890mW", 58.4
    else:
        gpu, rails, temp = "GR3D_FREQ 0%@[306,306]", "VDD_IN 4980mW/4980mW VDD_CPU_GPU_CV 610mW/610mW VDD_SOC 1402mW/1402mW", 49.1
    return ("%s RAM 2274/7620MB (lfb 27x4MB) SWAP 0/3810MB (cached 0MB) CPU [12%%@1510,8%%@1510,3%%@1510,5%%@1510,"
            "2%%@1510,1%%@1510] EMC_FREQ 9%%@2133 %s cpu@%.1fC soc2@47.9C soc0@48.2C gpu@%.1fC tj@%.1fC soc1@48.0C "
            "%s" % (stamp, gpu, temp - 1.0, temp, temp + 0.6, rails))


def main():
    with open(os.path.join(HERE, "argv.jsonl"), "a") as handle:
        handle.write('["tegrastats", %s]\n' % ", ".join('"%s"' % a for a in sys.argv[1:]))
    interval = 1000
    if "--interval" in sys.argv:
        interval = int(sys.argv[sys.argv.index("--interval") + 1])
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        print(line(os.path.exists(os.path.join(HERE, "BUSY"))), flush=True)
        time.sleep(interval / 1000.0)


if __name__ == "__main__":
    main()
