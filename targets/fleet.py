"""Fleets: one deploy on many devices in parallel, one bad device never hiding the others (fabric's Group).

The host-side work (export, INT8, fidelity) is done once, before any thread starts: torch's exporter is not
thread-safe, and every device measures the very same artifacts. Then each device runs the ordinary deploy in
its own thread (the artifacts come from the store, so only upload + measure + report run per device) into
RUN/<alias>/; RUN/fleet.json lists every device's outcome and RUN/compare.* sets the finished ones side by side.
When some devices fail, FleetError carries every result and exits PARTIAL (8).
"""
from __future__ import annotations

import json
import logging
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Sequence

from edgekit.errors import EdgekitError, ExitStatus
from edgekit.targets.inventory import InventoryHost

log = logging.getLogger(__name__)
FLEET_JSON = "fleet.json"


@dataclass
class DeviceResult:
    alias: str
    host: str
    run_dir: Path
    seconds: float
    report: dict | None = None
    error: str | None = None  # the rendered error (message and fix) of a failed device
    status: ExitStatus = ExitStatus.OK

    @property
    def ok(self) -> bool:
        return self.report is not None

    @property
    def brief(self) -> str:
        """One line for a summary: the error's first line and, when it has more, its last (often the cause)."""
        if not self.error:
            return self.status.name.lower()
        lines = [ln.strip() for ln in self.error.split("\n  fix:")[0].splitlines() if ln.strip()]
        return lines[0] if len(lines) < 2 else f"{lines[0]} ... {lines[-1]}"

    def to_dict(self) -> dict:
        return {"device": self.alias, "host": self.host, "ok": self.ok, "run_dir": str(self.run_dir),
                "seconds": round(self.seconds, 2), "exit_status": int(self.status), "status": self.status.name.lower(),
                "error": self.error}


class FleetError(EdgekitError):
    """Some (or all) devices failed: carries every device's result, finished ones included."""

    def __init__(self, results: Sequence[DeviceResult], summary: Path | None = None) -> None:
        self.results = list(results)
        failed = [r for r in self.results if not r.ok]
        done = len(self.results) - len(failed)
        kinds = {r.status for r in failed}
        # Partial when anything finished; when nothing did, the one shared failure kind says more.
        self.status = ExitStatus.PARTIAL if done or len(kinds) != 1 else kinds.pop()
        lines = [f"{done} of {len(self.results)} devices finished; failed:"]
        lines += [f"  {r.alias} ({r.host}): {r.brief}" for r in failed]
        super().__init__("\n".join(lines), hint=(f"every device's outcome is in {summary}; " if summary else "")
                         + "fix or drop the failed devices and run again (finished reports are kept)")

    @property
    def failed(self) -> list[DeviceResult]:
        return [r for r in self.results if not r.ok]


def labels(hosts: Sequence[InventoryHost]) -> list[str]:
    """Folder-safe, unique per-device names."""
    out: list[str] = []
    for host in hosts:
        base = "".join(c if c.isalnum() or c in "-_." else "_" for c in host.alias).strip(".") or "device"
        name, n = base, 2
        while name in out:
            name, n = f"{base}-{n}", n + 1
        out.append(name)
    return out


def run_parallel(hosts: Sequence[InventoryHost], job: Callable[[InventoryHost, Path], dict], root: Path,
                 workers: int | None = None) -> list[DeviceResult]:
    """job(host, run_dir) -> report on every host at once; errors are caught per device, results in host order."""
    names = labels(hosts)

    def one(host: InventoryHost, name: str) -> DeviceResult:
        run_dir = root / name
        started = time.perf_counter()
        try:
            report = job(host, run_dir)
            return DeviceResult(name, host.spec, run_dir, time.perf_counter() - started, report=report)
        except EdgekitError as exc:
            return DeviceResult(name, host.spec, run_dir, time.perf_counter() - started, error=exc.render(),
                                status=ExitStatus(int(exc.status)))
        except Exception as exc:  # a bug on one device must not hide the others: kept with its traceback
            log.error("%s: unexpected error\n%s", name, traceback.format_exc())
            return DeviceResult(name, host.spec, run_dir, time.perf_counter() - started,
                                error=f"unexpected {type(exc).__name__}: {exc}", status=ExitStatus.ERROR)

    with ThreadPoolExecutor(max_workers=workers or len(hosts) or 1, thread_name_prefix="fleet") as pool:
        futures = [pool.submit(one, host, name) for host, name in zip(hosts, names)]
        try:
            return [f.result() for f in futures]
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def write_summary(results: Sequence[DeviceResult], root: Path) -> Path:
    """RUN/fleet.json (every device, failed ones with their error) and, for two or more finished devices,
    RUN/compare.{json,md,html}."""
    from edgekit.io import commit_all
    from edgekit.report.write import to_json, write_compare

    root.mkdir(parents=True, exist_ok=True)
    done = [(r.alias, r.report) for r in results if r.ok]
    if len(done) > 1:
        write_compare(done, root)
    path = root / FLEET_JSON
    data = {"schema": "edgekit.fleet/1", "devices": [r.to_dict() for r in results],
            "finished": len(done), "failed": len(results) - len(done)}
    commit_all({path: lambda tmp: tmp.write_text(to_json(data), encoding="utf-8")})
    return path


def prepare_artifacts(cfg: "DeployConfig") -> None:
    """Export (and quantize, and check fidelity) once, here, so every device's deploy finds it all in the
    store: run_deploy's own build step."""
    from edgekit.pipeline.context import ModelContext
    from edgekit.pipeline.deploy import _images, build_artifacts
    from edgekit.store import Store
    from edgekit.variants.registry import get_spec

    ctx = ModelContext(spec=get_spec(cfg.model), checkpoint=cfg.checkpoint, store=Store(cfg.store),
                       encoder_onnx=cfg.encoder_onnx)
    build_artifacts(cfg, ctx, _images(cfg))


def deploy_fleet(cfg: "DeployConfig", hosts: Sequence[InventoryHost], workers: int | None = None) -> list[DeviceResult]:
    """Deploy `cfg` (its host ignored) to every host; RUN = cfg.out. Returns the results when all finished,
    raises FleetError (carrying them all) when any failed. A failed fidelity check is a device's failure too."""
    from edgekit.pipeline.deploy import run_deploy

    if not hosts:
        raise EdgekitError("no devices to deploy to")
    root = Path(cfg.out)
    prepare_artifacts(cfg)

    def job(host: InventoryHost, run_dir: Path) -> dict:
        return run_deploy(replace(cfg, out=run_dir, host=host.spec, progress=False))

    results = run_parallel(hosts, job, root, workers)
    summary = write_summary(results, root)
    if any(not r.ok for r in results):
        raise FleetError(results, summary)
    return results


def results_json(results: Sequence[DeviceResult]) -> str:
    return json.dumps([r.to_dict() for r in results], indent=2)
