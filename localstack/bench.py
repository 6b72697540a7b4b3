#!/usr/bin/env python3
"""Benchmark poolside against the local stack.

For each of --runs fresh environments (copies of environments/local.toml under
new names, each with a PostgreSQL cluster of its own standing in for its RDS
instance, so runs do not share state): deploy from empty, a no-op deploy, and
plan, drift and status on the deployed environment, then destroy. Reports the
median wall time of each and the API calls each made (from --stats), as a
Markdown table. Mutating calls leave out the lock and history objects of the
state bucket (S3 PutObject/DeleteObject), which every deploy and destroy
write and which change nothing of the environment.

With --latency MUTATING_MS,READ_MS (e.g. 300,50, closer to AWS than moto's
few milliseconds) poolside talks to moto through localstack/latency_proxy.py,
and the table gains apply's makespan against its critical path (from the
step events' start and end times and what each step waited for): how much
time the scheduler loses to its concurrency limits. Every run also reports
how many of its reads before the first change waited for one another (the
round trips its discovery is deep, meaningful under added latency) and which.

With --waits, it deploys one environment from empty and destroys it through
the realistic layer (tests/realistic_aws.py), whose RDS instance and NAT
gateway change state with time, with waits asking at AWS's interval
(target.poll_interval_seconds, --poll-interval, 10 s as on AWS), and reports
for each wait how long after the state changed poolside looked (the layer's
`noticed` events).

    localstack/bench.py [--runs 5] [--binary target/debug/poolside] [--latency 300,50]
    localstack/bench.py --waits [--poll-interval 10]
    localstack/bench.py --fleet 20 [--latency 0,300]

With --fleet N, it deploys N environments (each with its own PostgreSQL),
times `status` on each alone, then `fleet status` over all of them at once
(--concurrency N), and reports the fleet's wall time against the slowest
single status (target: at most 1.5 times) and the calls one status makes
(what each environment costs the fleet: fleet reads each as status does).
"""
import argparse, contextlib, json, os, pathlib, platform, re, socket, statistics, subprocess, sys, tempfile, time

ROOT = pathlib.Path(__file__).resolve().parent.parent


def run(binary, env_dir, *args):
    started = time.monotonic()
    proc = subprocess.run(
        [binary, "--environments-dir", env_dir, "--output", "json", "--stats", *args],
        capture_output=True, text=True, stdin=subprocess.DEVNULL)
    wall = time.monotonic() - started
    if proc.returncode not in (0, 2):
        sys.exit(f"poolside {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr}")
    lines = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
    stats = next(l for l in lines if l["type"] == "stats")["calls"]
    reads_per_op = [op["calls"] for op in stats["operations"] if not op["mutating"]]
    bookkeeping = sum(op["calls"] for op in stats["operations"]
                      if op["service"] == "S3" and op["operation"] in ("PutObject", "DeleteObject"))
    steps = sum(l.get("elapsed_ms", 0) for l in lines if l["type"] == "event") / 1000
    data_tier = next((l for l in lines if l["type"] == "data_tier"), None)
    path = next((l for l in lines if l["type"] == "critical_path"), None)
    return {"wall": wall, "steps": steps, "path": path, "data_tier": data_tier["elapsed_ms"] / 1000 if data_tier else 0, "calls": stats["total_calls"], "mutating": stats["mutating_calls"] - bookkeeping,
            "retries": stats["retries"], "read_depth": stats.get("read_depth", 0), "deepest_reads": stats.get("deepest_reads", []),
            "max_reads_per_operation": max(reads_per_op, default=0)}


@contextlib.contextmanager
def postgres(database):
    """A throwaway cluster from localstack/postgres.sh, on a free port."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as data:
        env = dict(os.environ, POOLSIDE_PG_DATA=f"{data}/data", POOLSIDE_PG_PORT=str(port),
                   POOLSIDE_PG_CRON_DB=database)
        script = str(ROOT / "localstack" / "postgres.sh")
        subprocess.run([script, "start"], env=env, check=True, capture_output=True)
        try:
            yield port
        finally:
            subprocess.run([script, "stop"], env=env, capture_output=True)


def free_port_pair(start):
    """A port whose next port is free too (PostgREST's API and admin servers)."""
    def free(port):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
                return True
            except OSError:
                return False
    port = start
    while not (free(port) and free(port + 1)):
        port += 2
    return port


def stop_postgrest(name):
    """Deploy leaves the environment's PostgREST running (as ./start.sh wants); a bench run does not."""
    home = pathlib.Path(os.environ.get("POOLSIDE_HOME", pathlib.Path.home() / ".local/share/poolside"))
    pid_file = home / "run" / f"postgrest-{name}.pid"
    with contextlib.suppress(FileNotFoundError, ProcessLookupError, ValueError):
        os.kill(int(pid_file.read_text().strip()), 15)
        pid_file.unlink()


@contextlib.contextmanager
def proxy(script, upstream, *args):
    """One of the project's proxies (script, relative to the repository) on a
    free port in front of upstream, once it listens; yields its URL."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, str(ROOT / script), str(port), upstream, *args],
                              stdout=subprocess.DEVNULL)
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.1):
                break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait()


def latency_proxy(latency, upstream):
    """localstack/latency_proxy.py: MUTATING_MS,READ_MS added to each call."""
    return proxy("localstack/latency_proxy.py", upstream, *latency.split(","))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--binary", default=str(ROOT / "target" / "debug" / "poolside"))
    parser.add_argument("--latency", help="MUTATING_MS,READ_MS added to every call through a proxy")
    parser.add_argument("--endpoint", help="the emulator to use instead of local.toml's")
    parser.add_argument("--waits", action="store_true", help="how soon each wait notices a change, through the realistic layer")
    parser.add_argument("--poll-interval", type=int, default=10, help="target.poll_interval_seconds for --waits")
    parser.add_argument("--fleet", type=int, help="deploy this many environments and time fleet status against status")
    args = parser.parse_args()
    template = (ROOT / "environments" / "local.toml").read_text()
    upstream = re.search(r'^endpoint_url = "(.*)"$', template, flags=re.M).group(1)
    if args.endpoint:
        template = template.replace(f'endpoint_url = "{upstream}"', f'endpoint_url = "{args.endpoint}"')
        upstream = args.endpoint
    if args.waits:
        return waits(args, template, upstream)
    with contextlib.ExitStack() as stack:
        if args.latency:
            endpoint = stack.enter_context(latency_proxy(args.latency, upstream))
            template = template.replace(f'endpoint_url = "{upstream}"', f'endpoint_url = "{endpoint}"')
        if args.fleet:
            return fleet(args, template)
        bench(args, template)


def realistic_layer(upstream):
    """tests/realistic_aws.py, which plays AWS's states over time."""
    return proxy("tests/realistic_aws.py", upstream)


def waits(args, template, upstream):
    """Deploy from empty and destroy through the realistic layer; how long after each change poolside looked."""
    import urllib.request
    name = f"waits{os.getpid() % 10000}"
    with realistic_layer(upstream) as url, tempfile.TemporaryDirectory() as env_dir, postgres("poolside") as port:
        text = re.sub(r'^name = ".*"$', f'name = "{name}"', template, flags=re.M)
        # --poll-interval 0 leaves the key out (a binary from before it, which waited with the SDK's waiters).
        interval = f"\npoll_interval_seconds = {args.poll_interval}" if args.poll_interval else ""
        text = text.replace(f'endpoint_url = "{upstream}"', f'endpoint_url = "{url}"{interval}')
        text = re.sub(r'^connect_port = .*$', f'connect_port = {port}', text, flags=re.M)
        text = re.sub(r'^local_port = .*$', f'local_port = {free_port_pair(23000)}', text, flags=re.M)
        (pathlib.Path(env_dir) / f"{name}.toml").write_text(text)
        deployed = run(args.binary, env_dir, "deploy", "--env", name, "--yes")
        destroyed = run(args.binary, env_dir, "destroy", "--env", name, "--yes")
        stop_postgrest(name)
        with urllib.request.urlopen(f"{url}/__proxy/events") as answer:
            events = json.load(answer)
    noticed = {}
    for event in events:
        if event["kind"] == "noticed":
            noticed.setdefault(event["wait"], []).append(event["after_s"])
    asking = f"every {args.poll_interval} s (target.poll_interval_seconds)" if args.poll_interval else "as the binary does by default"
    print(f"Waits asking {asking}, through the realistic layer; "
          f"deploy from empty {deployed['wall']:.0f} s, destroy {destroyed['wall']:.0f} s\n")
    print("| wait | changes seen | noticed after (longest) | noticed after (median) |")
    print("|---|---|---|---|")
    for wait, delays in sorted(noticed.items()):
        print(f"| {wait} | {len(delays)} | {max(delays):.1f} s | {statistics.median(delays):.1f} s |")
    if not noticed:
        sys.exit("FAIL: the realistic layer saw no wait notice a change")


def fleet(args, template):
    """N deployed environments: status on each alone, then fleet status on all at once."""
    singles = []
    with tempfile.TemporaryDirectory() as env_dir, contextlib.ExitStack() as clusters:
        names = []
        for i in range(args.fleet):
            name = f"fleet{os.getpid() % 10000}x{i}"
            port = clusters.enter_context(postgres("poolside"))
            text = re.sub(r'^name = ".*"$', f'name = "{name}"', template, flags=re.M)
            text = re.sub(r'^connect_port = .*$', f'connect_port = {port}', text, flags=re.M)
            text = re.sub(r'^local_port = .*$', f'local_port = {free_port_pair(23000 + 2 * i)}', text, flags=re.M)
            (pathlib.Path(env_dir) / f"{name}.toml").write_text(text)
            run(args.binary, env_dir, "deploy", "--env", name, "--yes")
            names.append(name)
        for name in names:
            singles.append(run(args.binary, env_dir, "status", "--env", name))
        emulator_cpu = moto_cpu_seconds()
        started = time.monotonic()
        proc = subprocess.run([args.binary, "--environments-dir", env_dir, "--output", "json",
                               "fleet", "status", "--concurrency", str(args.fleet)],
                              capture_output=True, text=True, stdin=subprocess.DEVNULL)
        wall = time.monotonic() - started
        emulator_cpu = moto_cpu_seconds() - emulator_cpu if emulator_cpu is not None else None
        rows = [json.loads(l) for l in proc.stdout.splitlines() if l.startswith("{")]
        read = [r for r in rows if r.get("type") == "environment" and not r.get("error")]
        for name in names:
            run(args.binary, env_dir, "destroy", "--env", name, "--yes")
            stop_postgrest(name)
    slowest = max(s["wall"] for s in singles)
    print(f"Fleet of {args.fleet} environments on the emulator ({os.cpu_count()} cores): "
          f"{len(read)} read, exit {proc.returncode}\n")
    print("| | wall time | calls per environment |")
    print("|---|---|---|")
    print(f"| status, one environment (slowest of {len(singles)}) | {slowest * 1000:.0f} ms | {max(s['calls'] for s in singles)} |")
    print(f"| status, one environment (median) | {statistics.median(s['wall'] for s in singles) * 1000:.0f} ms | {statistics.median(s['calls'] for s in singles):.0f} |")
    print(f"| fleet status, all at once | {wall * 1000:.0f} ms ({wall / slowest:.2f} × the slowest) | as status |")
    if emulator_cpu is not None:
        print(f"\nmoto's CPU time during fleet status: {emulator_cpu:.1f} s of {wall:.1f} s "
              "(one Python process: the emulator, not poolside, bounds a fleet against one moto)")
    if len(read) != args.fleet:
        sys.exit(f"FAIL: fleet status read {len(read)} of {args.fleet} environments: {proc.stdout[-2000:]}")


def moto_cpu_seconds():
    """The CPU time (user + system) of the moto servers running here, or None."""
    total, found = 0.0, False
    for stat in pathlib.Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if b"moto_server" not in stat.read_bytes():
                continue
            fields = (stat.parent / "stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            found = True
        except OSError:
            continue
    return total if found else None


def upstream_of(template):
    return re.search(r'^endpoint_url = "(.*)"$', template, flags=re.M).group(1)


def bench(args, template):
    results = {"deploy from empty": [], "no-op deploy": [], "plan (deployed)": [],
               "drift (deployed)": [], "status (deployed)": [], "destroy": []}
    with tempfile.TemporaryDirectory() as env_dir:
        for i in range(args.runs):
            name = f"bench{os.getpid() % 10000}x{i}"
            with postgres("poolside") as port:
                text = re.sub(r'^name = ".*"$', f'name = "{name}"', template, flags=re.M)
                text = re.sub(r'^connect_port = .*$', f'connect_port = {port}', text, flags=re.M)
                text = re.sub(r'^local_port = .*$', f'local_port = {free_port_pair(23000)}', text, flags=re.M)
                (pathlib.Path(env_dir) / f"{name}.toml").write_text(text)
                results["deploy from empty"].append(run(args.binary, env_dir, "deploy", "--env", name, "--yes"))
                results["no-op deploy"].append(run(args.binary, env_dir, "deploy", "--env", name, "--yes"))
                results["plan (deployed)"].append(run(args.binary, env_dir, "plan", "--env", name))
                results["drift (deployed)"].append(run(args.binary, env_dir, "drift", "--env", name))
                results["status (deployed)"].append(run(args.binary, env_dir, "status", "--env", name))
                results["destroy"].append(run(args.binary, env_dir, "destroy", "--env", name, "--yes"))
                stop_postgrest(name)

    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    latency = f", {args.latency.replace(',', ' ms per mutating call, ')} ms per read added" if args.latency else ""
    print(f"Machine: {os.cpu_count()} cores ({cpu}), {platform.platform()}; {args.runs} runs each; emulator at {args.endpoint or upstream_of(template)}{latency}\n")
    print("| operation | median wall time | sum of apply step times | data tier (in the database) | API calls | SDK retries | mutating calls | max calls of one read operation |")
    print("|---|---|---|---|---|---|---|---|")
    for label, rows in results.items():
        median = statistics.median(r["wall"] for r in rows)
        calls = statistics.median(r["calls"] for r in rows)
        mutating = max(r["mutating"] for r in rows)
        reads = max(r["max_reads_per_operation"] for r in rows)
        steps = statistics.median(r["steps"] for r in rows)
        data_tier = statistics.median(r["data_tier"] for r in rows)
        retries = max(r["retries"] for r in rows)
        print(f"| {label} | {median * 1000:.0f} ms | {steps * 1000:.0f} ms | {data_tier * 1000:.0f} ms | {calls:.0f} | {retries} | {mutating} | {reads} |")
    print("\n| operation | reads before the first change, chained (median) | the deepest chain |")
    print("|---|---|---|")
    for label, rows in results.items():
        depth = statistics.median(r["read_depth"] for r in rows)
        deepest = max(rows, key=lambda r: r["read_depth"])["deepest_reads"]
        print(f"| {label} | {depth:.0f} | {' → '.join(deepest)} |")
    applied = [r for r in results["deploy from empty"] + results["destroy"] if r["path"]]
    if applied:
        print("\n| applied | makespan | critical path | makespan / critical path | critical path steps |")
        print("|---|---|---|---|---|")
    for label in ("deploy from empty", "destroy"):
        paths = [r["path"] for r in results[label] if r["path"]]
        if not paths:
            continue
        ratio = statistics.median(p["makespan_ms"] / max(p["critical_path_ms"], 1) for p in paths)
        makespan = statistics.median(p["makespan_ms"] for p in paths)
        critical = statistics.median(p["critical_path_ms"] for p in paths)
        longest = max(paths, key=lambda p: p["critical_path_ms"])["steps"]
        print(f"| {label} | {makespan:.0f} ms | {critical:.0f} ms | {ratio:.2f} | {' → '.join(longest)} |")
    noop = (results["no-op deploy"] + results["plan (deployed)"] + results["drift (deployed)"]
            + results["status (deployed)"])
    if any(r["mutating"] for r in noop):
        sys.exit("FAIL: a no-op deploy, plan, drift or status made a mutating call")
    # A healthy emulator needs no retry: a retried call is one it does not
    # implement (the SDK backs off for seconds before giving up on it).
    if any(r["retries"] for rows in results.values() for r in rows):
        sys.exit("FAIL: a call was retried (see SDK retries): an emulator's unimplemented operation costs seconds per run")


if __name__ == "__main__":
    main()
