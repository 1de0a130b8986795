"""A stand-in `adb` client with one phone attached, for the tests (no adbd can run here): it answers `devices -l`,
`features`, `shell`, `push` and `pull` as the real client does with a shell-v2 device, and records each argv in
argv.jsonl beside this script.

The "phone" is this machine: `shell LINE` runs `/bin/sh -c LINE` in a new session (adbd starts every shell in its
own session) and exits with its status, as shell protocol v2 carries it; push/pull copy files. Files beside this
script switch behaviours: DEVICES (lines `SERIAL STATE`, default one ready device `standin-phone-1`), NO_SHELL_V2;
phone-bin/ beside it holds the phone's own tools (a stand-in getprop), first on the shell's PATH.
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "argv.jsonl"), "a") as log:
    log.write(json.dumps(sys.argv[1:]) + "\n")


def devices():
    path = os.path.join(HERE, "DEVICES")
    if os.path.exists(path):
        return [line.split(None, 1) for line in open(path).read().splitlines() if line.strip()]
    return [["standin-phone-1", "device"]]


args = sys.argv[1:]
serial = None
if args[:1] == ["-s"]:
    serial, args = args[1], args[2:]
if not args:
    sys.exit("adb: no command")
command, rest = args[0], args[1:]
if command == "devices":
    print("List of devices attached")
    for name, state in devices():
        extra = " product:standin model:Pixel_8 device:shiba transport_id:1" if state == "device" else " transport_id:2"
        print("%s\t%s%s" % (name, state, extra if "-l" in rest else ""))
    print()
    sys.exit(0)
ready = [d for d in devices() if d[1] == "device"]
if serial is None:
    if len(devices()) != 1:
        sys.exit("adb: more than one device/emulator" if devices() else "adb: no devices/emulators found")
    serial = devices()[0][0]
state = dict((d[0], d[1]) for d in devices()).get(serial)
if state is None:
    sys.exit("adb: device '%s' not found" % serial)
if state != "device":
    sys.exit("adb: device %s is %s" % (serial, state))
if command == "features":
    base = "fixed_push_mkdir,apex,abb,fixed_push_symlink_timestamp,abb_exec,remount_shell,track_app,sendrecv_v2"
    print(base if os.path.exists(os.path.join(HERE, "NO_SHELL_V2")) else base + ",shell_v2,cmd,stat_v2,ls_v2")
    sys.exit(0)
if command == "shell":
    phone_bin = os.path.join(HERE, "phone-bin")  # the phone's own tools (getprop), first on its PATH
    env = dict(os.environ, PATH=phone_bin + ":" + os.environ.get("PATH", "/usr/bin:/bin"))
    proc = subprocess.Popen(["/bin/sh", "-c", " ".join(rest)], start_new_session=True, env=env)
    sys.exit(proc.wait())
if command == "push":
    local, remote = rest
    if not os.path.isfile(local):
        sys.exit("adb: error: cannot stat '%s': No such file or directory" % local)
    os.makedirs(os.path.dirname(remote) or ".", exist_ok=True)  # adb push creates missing folders
    shutil.copyfile(local, remote)
    print("%s: 1 file pushed, 0 skipped. (%d bytes in 0.001s)" % (local, os.path.getsize(local)))
    sys.exit(0)
if command == "pull":
    remote, local = rest
    if not os.path.isfile(remote):
        sys.exit("adb: error: failed to stat remote object '%s': No such file or directory" % remote)
    shutil.copyfile(remote, local)
    print("%s: 1 file pulled, 0 skipped. (%d bytes in 0.001s)" % (remote, os.path.getsize(remote)))
    sys.exit(0)
sys.exit("adb: unknown command %s" % command)
