"""One run of an on-device runner (targets/device/*_runner.py), shared by the runtime backends: push the runner,
the model (with its side files) and the inputs, run it, fetch result.json and the raw files it names, and always
remove the run's folder on the device.

The steps are the same for every runtime; what differs (which runner, which raw files to fetch, how to parse
them) stays in each backend. Uploads are content-addressed on the device too, so a re-run with the same bytes
skips them; the run folder is per model and removed in `finally` whatever happened.
"""
from __future__ import annotations

import json
import logging
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

from edgekit.errors import DeviceFailureError, EdgekitError
from edgekit.store import sha256_file
from edgekit.targets.base import MeasureConfig, Transport

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RunnerJob:
    runner: Path  # the device-side script
    runtime: str  # for messages: "ONNX Runtime", "LiteRT"
    python: str  # the device's Python
    extra_args: tuple[str, ...] = ()  # runner options beyond the common measurement ones
    scripts: tuple[Path, ...] = ()  # companion modules the runner imports, pushed beside it under their own names


def remote_name(path: Path) -> str:
    """`<sha256 prefix>-<name>`: content-addressed, so a re-run with the same bytes skips the upload."""
    return f"{sha256_file(path)[:16]}-{path.name}"


def run_job(job: RunnerJob, transport: Transport, model: Path, inputs: Path | None, config: MeasureConfig,
            results_dir: Path, *, companions: Sequence[Path] = (),
            wanted: Callable[[dict], dict[str, str]] = lambda raw: {}) -> tuple[dict, dict[str, Path]]:
    """Run `job` on `model` and fetch its results into `results_dir`.

    `companions` are side files the model needs beside it under their own names (ONNX external data).
    `wanted(raw)` names the raw files to fetch, {key: file name in the run folder}, from the runner's result.json.
    Returns (result.json as a dict, {"result": path, key: path, ...}).
    """
    work = transport.workdir()
    run_dir = posixpath.join(work, "runs", f"{sha256_file(model)[:12]}-{model.stem}")
    try:
        # prepare: the runner, the model and its side files, the inputs
        remote_runner = posixpath.join(work, job.runner.name)
        transport.put(job.runner, remote_runner)
        for script in job.scripts:  # beside the runner: its folder is the first place Python imports from
            transport.put(script, posixpath.join(work, script.name))
        model_dir = posixpath.join(work, "models", remote_name(model))
        remote_model = posixpath.join(model_dir, model.name)
        transport.put(model, remote_model)
        for side in companions:
            transport.put(side, posixpath.join(model_dir, side.name))
        argv = [job.python, remote_runner, "--model", remote_model, "--out", run_dir, *config.runner_args(),
                *job.extra_args]
        if inputs is not None:
            remote_inputs = posixpath.join(work, "inputs", remote_name(inputs))
            transport.put(inputs, remote_inputs)
            argv += ["--inputs", remote_inputs]
        # profile
        result = transport.run(argv, timeout=config.timeout_s)
        if not result.ok:
            tail = "\n".join(result.stderr.strip().splitlines()[-15:])
            raise DeviceFailureError(f"the {job.runtime} runner failed on {transport.host} (exit {result.returncode}):\n{tail}",
                                     hint="see the runner's error above; `edgekit doctor` checks the device's runtime")
        # fetch
        results_dir.mkdir(parents=True, exist_ok=True)
        files = {"result": results_dir / "result.json"}
        transport.get(posixpath.join(run_dir, "result.json"), files["result"])
        raw = json.loads(files["result"].read_text())
        for key, name in wanted(raw).items():
            files[key] = results_dir / posixpath.basename(name)  # the runner names files in its own folder only
            transport.get(posixpath.join(run_dir, posixpath.basename(name)), files[key])
    finally:
        try:
            transport.run(["rm", "-rf", "--", run_dir], timeout=60)  # cleanup, always
        except EdgekitError as exc:  # a dead link must not hide the error that is already on its way
            log.warning("could not clean %s on %s: %s", run_dir, transport.host, exc.message)
    return raw, files
