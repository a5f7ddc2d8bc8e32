"""``lora-hpo submit | status | logs | stop``: a study as a Ray job, and following it.

Imports no Ray until a command runs.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from typing import Any

from lora_hpo.cli.json_output import add_json_flag, emit
from lora_hpo.cli.study_commands import add_wait_flag
from lora_hpo.cluster.job_payload import (
    check_spec_uris,
    entrypoint,
    job_env,
    shared_storage_path,
    submission_id,
    tracking_uri,
)
from lora_hpo.cluster.jobs_client import Token, api_errors, client

TERMINAL = frozenset({"SUCCEEDED", "FAILED", "STOPPED"})
POLL_S = 1.0


def submit(args: argparse.Namespace) -> int:
    import yaml

    from lora_hpo.cli.study_commands import warn
    from lora_hpo.search.cluster_capacity import parse_duration
    from lora_hpo.spec.spec_loader import load_spec, spec_hash, spec_to_dict

    parse_duration(args.wait_for_resources)  # a bad duration fails here, not on the cluster
    spec = load_spec(args.file, args.set)  # bad input fails here, before the cluster is asked
    storage = shared_storage_path(args.storage_path)
    warn(args.file, spec)
    data = spec_to_dict(spec)
    check_spec_uris(args.file, data)
    env = job_env(yaml.safe_dump(data, sort_keys=False), tracking_uri(args.tracking_uri))
    jobs, url, token = client(args.address)
    with api_errors(url, token):
        job_id = jobs.submit_job(
            entrypoint=entrypoint(args.python, storage, args.wait_for_resources),
            submission_id=submission_id(spec.name),
            runtime_env={"env_vars": env},
            metadata={"lora_hpo_study": spec.name, "lora_hpo_spec_hash": spec_hash(spec)},
        )
    print(job_id, flush=True)
    if not args.wait:
        print(f"follow it: lora-hpo logs {job_id} --follow --address {url}", file=sys.stderr)
        return 0
    try:
        return 0 if wait(jobs, url, token, job_id) == "SUCCEEDED" else 1
    except KeyboardInterrupt:
        print(f"the job goes on; stop it: lora-hpo stop {job_id} --address {url}", file=sys.stderr)
        raise


def follow_logs(jobs: Any, job_id: str) -> bool:
    """Stream the job's logs to stdout until it ends; False when the stream broke."""
    import asyncio

    async def tail() -> None:
        async for chunk in jobs.tail_job_logs(job_id):
            print(chunk, end="", flush=True)

    try:
        with warnings.catch_warnings():  # Ray's own websocket call trips an aiohttp deprecation
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.run(tail())
    except Exception as exc:  # a dropped websocket: the caller falls back to polling
        print(f"warning: the log stream ended early ({type(exc).__name__})", file=sys.stderr)
        return False
    return True


def wait(jobs: Any, url: str, token: Token | None, job_id: str) -> str:
    """Stream logs, then poll until the job is terminal; status changes go to stderr."""
    with api_errors(url, token, job_id):
        follow_logs(jobs, job_id)
        last = ""
        while True:
            info = jobs.get_job_info(job_id)
            status = str(info.status)
            if status != last:
                print(f"{job_id}: {status} {info.message or ''}".rstrip(), file=sys.stderr)
                last = status
            if status in TERMINAL:
                return status
            time.sleep(POLL_S)


def status(args: argparse.Namespace) -> int:
    jobs, url, token = client(args.address)
    with api_errors(url, token, args.job_id):
        info = jobs.get_job_info(args.job_id)
    study = (info.metadata or {}).get("lora_hpo_study")
    if getattr(args, "json", False):
        emit(status_doc(args.job_id, info, study))
        return 0
    print(f"{args.job_id}: {info.status}")
    for line in (info.message, f"study {study!r}" if study else None):
        if line:
            print(f"  {line}")
    return 0


def status_doc(job_id: str, info: Any, study: str | None) -> dict[str, Any]:
    """``status --json``: the job's id, status and message, its study, and when it started and
    ended (ISO 8601, UTC; null until then)."""
    return {
        "job_id": job_id,
        "status": str(info.status),
        "message": info.message or None,
        "error_type": getattr(info, "error_type", None),
        "study": study,
        "start_time": _iso(info.start_time),
        "end_time": _iso(info.end_time),
    }


def _iso(ms: int | None) -> str | None:
    """A Ray job time (ms since the epoch) as ISO 8601 in UTC."""
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).isoformat() if ms else None


def logs(args: argparse.Namespace) -> int:
    jobs, url, token = client(args.address)
    with api_errors(url, token, args.job_id):
        jobs.get_job_info(args.job_id)  # a clear error for an unknown id, before streaming
        if args.follow:
            return 0 if follow_logs(jobs, args.job_id) else 1
        print(jobs.get_job_logs(args.job_id), end="")
    return 0


def stop(args: argparse.Namespace) -> int:
    jobs, url, token = client(args.address)
    with api_errors(url, token, args.job_id):
        stopped = jobs.stop_job(args.job_id)
    print(f"{args.job_id}: {'stop requested' if stopped else 'already finished'}")
    return 0


ADDRESS_HELP = "the Ray dashboard URL (default: RAY_API_SERVER_ADDRESS, else RAY_ADDRESS if http)"


def add_commands(sub: Any) -> None:
    """Register submit, status, logs and stop on the ``lora-hpo`` subparsers."""
    p = sub.add_parser("submit", help="run a study as a job on a Ray cluster (Jobs API)")
    p.add_argument("file", metavar="FILE")
    p.add_argument("--address", help=ADDRESS_HELP + ", e.g. http://HOST:8265")
    p.add_argument("--wait", action="store_true", help="stream logs; exit 0 only on SUCCEEDED")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument(
        "--storage-path",
        help="results root that every node of the cluster reads: an s3:// or gs:// URI, or an"
        " absolute path on a shared mount (required)",
    )
    p.add_argument("--tracking-uri", help="MLflow URI for the job (default: the cluster's own)")
    p.add_argument("--python", default="python", help="the cluster's Python (default: python)")
    add_wait_flag(p)
    p.set_defaults(func=submit)
    for name, func, text in (
        ("status", status, "show a submitted job's status"),
        ("logs", logs, "print a submitted job's logs"),
        ("stop", stop, "stop a submitted job"),
    ):
        p = sub.add_parser(name, help=text)
        p.add_argument("job_id", metavar="JOB_ID")
        p.add_argument("--address", help=ADDRESS_HELP)
        if name == "logs":
            p.add_argument("--follow", action="store_true", help="stream until the job ends")
        if name == "status":
            add_json_flag(p, "the job's status, message, study and times")
        p.set_defaults(func=func)
