"""The few POSIX sh snippets edgekit runs on a device, and the one way they are invoked.

Every path and argument reaches the device as a positional parameter of `sh -c SCRIPT` (the command line is
built by shlex.join), so a file called `a b;$(rm -rf ~)'.onnx` is data, never code. The snippets use only
POSIX sh, cat, wc, mv, mkdir, tail and one of sha256sum / shasum / python3 (busybox, toybox and macOS all
qualify). The hash helper `h` is shared by the scripts that verify content.
"""
from __future__ import annotations

import shlex
from typing import Sequence

# python3 -c fallback when the device has neither sha256sum nor shasum (some minimal images).
PYHASH = ("import hashlib,sys\nh=hashlib.sha256()\nwith open(sys.argv[1],'rb') as f:\n"
          " [h.update(b) for b in iter(lambda: f.read(1<<20), b'')]\nprint(h.hexdigest())")

# $1 = hasher preference ("auto" | "python"), $2 = PYHASH; the script's own arguments follow.
_PRELUDE = r"""EK_HASHER=$1; EK_PYHASH=$2; shift 2
h() {
  if [ "$EK_HASHER" != python ] && command -v sha256sum >/dev/null 2>&1; then out=$(sha256sum < "$1") || return 1
  elif [ "$EK_HASHER" != python ] && command -v shasum >/dev/null 2>&1; then out=$(shasum -a 256 < "$1") || return 1
  elif command -v python3 >/dev/null 2>&1; then out=$(python3 -c "$EK_PYHASH" "$1") || return 1
  elif command -v python >/dev/null 2>&1; then out=$(python -c "$EK_PYHASH" "$1") || return 1
  else echo "edgekit: no sha256 tool on the device (sha256sum, shasum or python3)" >&2; return 3
  fi
  printf '%s\n' "${out%% *}"
}
size() { s=$(wc -c < "$1") && printf '%s\n' $((s + 0)); }
"""

# The per-user work directory: $1 = explicit dir ("" -> ${XDG_CACHE_HOME:-~/.cache}/edgekit); prints its absolute path.
WORKDIR = r"""case $1 in
  "") d=${XDG_CACHE_HOME:-$HOME/.cache}/edgekit ;;
  "~") d=$HOME ;;
  "~/"*) d=$HOME/${1#"~/"} ;;
  *) d=$1 ;;
esac
mkdir -p -- "$d" && chmod 700 "$d" && cd "$d" && pwd"""

# Before an upload: $1 final, $2 part, $3 expected size, $4 directory. Prints `final HASH` when a file of the
# right size is already there, and `part SIZE` when an earlier upload left its partial file.
PROBE = _PRELUDE + r"""mkdir -p -- "$4" || exit 1
if [ -f "$1" ] && [ "$(size "$1")" = "$3" ]; then d=$(h "$1") || exit 3; printf 'final %s\n' "$d"; fi
if [ -f "$2" ]; then printf 'part %s\n' "$(size "$2")"; fi
exit 0"""

# Receive bytes on stdin, then verify ON THE DEVICE and rename (atomic within one file system), in one round
# trip: $1 part, $2 offset (the size the part must have now; 0 truncates), $3 expected sha256, $4 final.
# A link that drops mid-way ends `cat` with a short part: its hash differs (exit 4) and the part stays for
# the next attempt to continue.
APPEND = _PRELUDE + r"""if [ "$2" = 0 ]; then cat > "$1" || exit 1
else
  s=$(wc -c < "$1") || exit 5
  [ $((s + 0)) = "$2" ] || { echo "edgekit: $1 changed size under us ($((s + 0)) != $2)" >&2; exit 5; }
  cat >> "$1" || exit 1
fi
d=$(h "$1") || exit 3
if [ "$d" != "$3" ]; then printf 'edgekit: sha256 on the device is %s\n' "$d" >&2; exit 4; fi
mv -f -- "$1" "$4"
"""

# After a file arrived by other means (adb push): $1 part, $2 expected sha256, $3 final. Verify ON THE DEVICE and
# rename; exit 4 (and the part removed) when the content differs.
VERIFY = _PRELUDE + r"""d=$(h "$1") || exit 3
if [ "$d" != "$2" ]; then rm -f -- "$1"; printf 'edgekit: sha256 on the device is %s\n' "$d" >&2; exit 4; fi
mv -f -- "$1" "$3"
"""

# The sha256 of one file on the device: $1 file (exit 2 when it is not there).
HASH = _PRELUDE + r"""[ -f "$1" ] || { printf 'edgekit: no such file on the device: %s\n' "$1" >&2; exit 2; }
h "$1"
"""

# Send a file from an offset, then its sha256 as the last stderr line: $1 file, $2 offset.
READ = _PRELUDE + r"""[ -f "$1" ] || { printf 'edgekit: no such file on the device: %s\n' "$1" >&2; exit 2; }
if [ "$2" = 0 ]; then cat < "$1" || exit 1; else tail -c +$(($2 + 1)) < "$1" || exit 1; fi
d=$(h "$1") || exit 3
printf 'edgekit-sha256 %s\n' "$d" >&2
"""
SHA_PREFIX = "edgekit-sha256 "

# run(argv): the command runs in its own session/process group (setsid, where present) so a timeout or Ctrl-C
# can end it and everything it started; its pid is the first line of stderr. $0 = the inner script below.
LAUNCH = r"""if command -v setsid >/dev/null 2>&1 && setsid -w true </dev/null >/dev/null 2>&1; then
  exec setsid -w sh -c "$0" edgekit-run "$@"
fi
exec sh -c "$0" edgekit-run "$@"
"""
INNER = r"""printf 'edgekit-pid %s\n' "$$" >&2
command -v "$1" >/dev/null 2>&1 || { printf 'edgekit: command not found: %s\n' "$1" >&2; exit 127; }
exec "$@"
"""
PID_PREFIX = "edgekit-pid "
NOT_FOUND = "edgekit: command not found: "

# End a process group (and the pid itself where setsid was missing): TERM, a grace period, then KILL.
KILL = r"""kill -TERM -"$1" 2>/dev/null; kill -TERM "$1" 2>/dev/null
i=0; while kill -0 "$1" 2>/dev/null && [ $i -lt 20 ]; do sleep 0.1 2>/dev/null || sleep 1; i=$((i + 1)); done
kill -KILL -"$1" 2>/dev/null; kill -KILL "$1" 2>/dev/null; exit 0"""


def command_line(script: str, args: Sequence[str], hasher: str | None = None) -> str:
    """The exact string sent to the device's login shell: `sh -c SCRIPT name [hasher pyhash] args...`."""
    prefix = [hasher, PYHASH] if hasher is not None else []
    return shlex.join(["sh", "-c", script, "edgekit", *prefix, *[str(a) for a in args]])


def launch_line(argv: Sequence[str]) -> str:
    return shlex.join(["sh", "-c", LAUNCH, INNER, *[str(a) for a in argv]])
