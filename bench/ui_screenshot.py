"""The MLflow UI on a finished study, as a user sees it, in headless Chromium (Debian's
``chromium`` package): the quickstart study tracked on a real ``mlflow server``, then
screenshots, taken over the DevTools protocol, of its experiment (the study run opened on its
trial runs, their Dataset and Model columns) and of the champion's registered model version.
The PNGs go to ``bench/results/``.

    python -m bench.ui_screenshot            # about 3 minutes on 2 cores

A client of the product: it runs ``lora-hpo run`` and reads MLflow as a user would."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results"
WIDTH, HEIGHT = 1900, 1000
CLOSE = "mlflow.assistant.chat_panel.close"  # the assistant panel, which hides the columns


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_up(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 120) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{url} did not come up")
        try:
            with urllib.request.urlopen(url, timeout=5):
                return
        except OSError:
            time.sleep(0.5)  # the pause between polls of the condition


def _get(uri: str, path: str) -> dict:  # type: ignore[type-arg]
    with urllib.request.urlopen(f"{uri}/api/2.0/mlflow/{path}", timeout=30) as got:
        return dict(json.load(got))


class Tab:
    """One headless Chromium tab, driven over the DevTools protocol (aiohttp's websocket)."""

    def __init__(self, ws: Any) -> None:
        self.ws, self.calls = ws, 0

    async def call(self, method: str, **params: Any) -> dict[str, Any]:
        self.calls += 1
        await self.ws.send_json({"id": self.calls, "method": method, "params": params})
        while True:
            msg = await self.ws.receive_json()
            if msg.get("id") == self.calls:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return dict(msg.get("result", {}))

    async def js(self, expression: str) -> Any:
        got = await self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        return got.get("result", {}).get("value")

    async def until(self, expression: str, timeout_s: float = 90) -> None:
        deadline = time.monotonic() + timeout_s
        while not await self.js(expression):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the page never showed: {expression}")
            await asyncio.sleep(0.25)  # the pause between polls of the condition

    async def open(self, url: str, ready: str) -> None:
        await self.call("Page.navigate", url=url)
        await self.until(ready)
        await self.js(f"document.querySelector('button[data-component-id=\"{CLOSE}\"]')?.click()")

    async def shoot(self, png: Path, settle: str) -> None:
        await self.until(settle)
        got = await self.call("Page.captureScreenshot", format="png")
        png.write_bytes(base64.b64decode(got["data"]))
        print(f"wrote {png.relative_to(ROOT)} ({png.stat().st_size:,} bytes)")


async def _browse(chromium: str, shots: Any) -> None:
    port = _free_port()
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    cmd += [f"--remote-debugging-port={port}", f"--window-size={WIDTH},{HEIGHT}", "about:blank"]
    browser = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_up(f"http://127.0.0.1:{port}/json/version", browser)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json", timeout=10) as got:
            page = next(t for t in json.load(got) if t["type"] == "page")
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0) as ws,
        ):
            tab = Tab(ws)
            await tab.call("Page.enable")
            await tab.call(
                "Emulation.setDeviceMetricsOverride",
                width=WIDTH,
                height=HEIGHT,
                deviceScaleFactor=1,
                mobile=False,
            )
            await shots(tab)
    finally:
        browser.terminate()
        browser.wait(timeout=60)


async def _shots(tab: Tab, uri: str, exp_id: str, version: str) -> None:
    rows = "document.querySelectorAll('.ag-row').length"
    # the UI's GenAI / Model training switch is the browser's own setting, GenAI at first;
    # the link that lora-hpo prints names the workflow, as this one does
    await tab.open(f"{uri}/#/experiments/{exp_id}?workflowType=machine_learning", f"{rows} > 0")
    await tab.js(
        "document.querySelector('.ag-row button[data-component-id*=runnamecellrenderer]').click()"
    )
    await tab.shoot(OUT / "mlflow_ui_runs.png", f"{rows} > 2")  # the study run, opened
    await tab.open(
        f"{uri}/#/models/quickstart/versions/{version}",
        "document.body.innerText.includes('champion')",
    )
    await tab.shoot(OUT / "mlflow_ui_champion.png", "document.body.innerText.includes('Schema')")


def main() -> int:
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        print("needs Debian's chromium package: apt-get install chromium", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="lora-hpo-ui-"))
    port = _free_port()
    uri = f"http://127.0.0.1:{port}"
    server_cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1"]
    server_cmd += ["--port", str(port), "--backend-store-uri", f"sqlite:///{work}/mlflow.db"]
    server_cmd += ["--artifacts-destination", str(work / "artifacts")]
    server = subprocess.Popen(
        server_cmd, cwd=work, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        _wait_up(f"{uri}/health", server)
        spec = ROOT / "search_spaces" / "quickstart.yaml"
        study = [sys.executable, "-m", "lora_hpo.cli", "run", str(spec), "--tracking-uri", uri]
        study += ["--storage-path", str(work / "studies")]
        env = dict(os.environ, RAY_ADDRESS="local")
        subprocess.run(study, cwd=work, env=env, check=True, timeout=1200)
        experiment = _get(uri, "experiments/get-by-name?experiment_name=quickstart")
        exp_id = experiment["experiment"]["experiment_id"]
        model = _get(uri, "registered-models/alias?name=quickstart&alias=champion")
        version = model["model_version"]["version"]
        OUT.mkdir(parents=True, exist_ok=True)
        asyncio.run(_browse(chromium, lambda tab: _shots(tab, uri, exp_id, version)))
    finally:
        server.terminate()
        server.wait(timeout=60)
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
