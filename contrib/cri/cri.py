#!/usr/bin/python3
"""cri.py: a small CRI client (runtime.v1 over gRPC) for tests and benchmarks.

The Python module for the CRI's api.proto is generated with protoc when first
needed (Debian's python3-grpcio, python3-protobuf and protobuf-compiler; no
grpc_tools), and the calls go through grpc's generic unary_unary, so nothing
but api.proto (golang-github-kubernetes-cri-api-dev) has to be fetched.

Usage: cri.py [-a SOCKET] [--proto API.PROTO] COMMAND ...
  call METHOD [JSON]        one RuntimeService or ImageService call; the
                            request in proto3 JSON (snake_case or camelCase),
                            the reply as JSON on stdout (bytes as text)
  exec CID [--timeout S] -- CMD...
                            ExecSync: the command's stdout and stderr, and
                            its exit code as ours
  cleanup                   stops and removes every container and pod
  bench ROUNDS HANDLER...   RunPodSandbox+CreateContainer+StartContainer+
                            StopPodSandbox+RemovePodSandbox, ROUNDS per
                            handler interleaved after --warmup rounds; JSON
                            {handler: {phase: [seconds per round]}} (needs
                            --image and --log-dir; --cgroup-parent)
  burst PODS PER_POD HANDLER [--parallel P]
                            PODS pods of PER_POD containers (`sleep`) at
                            once, P pods in flight, each pod's sandbox then
                            its containers created and started in turn (as
                            kubelet does); JSON {wall, failures, errors,
                            running, client_cpu (seconds of this process),
                            ops: {phase: [seconds]}} (needs --image
                            and --log-dir; --cgroup-parent, --prefix)
  teardown [--parallel P]   StopPodSandbox+RemovePodSandbox of every pod, P
                            at a time; JSON {wall, failures, errors}
  image-cmd IN.tar OUT.tar NAME CMD...
                            an OCI layout tar (contrib/make-image.sh) with
                            another name and default command (no socket)
A gRPC error is printed as "CODE: details" on stderr, exit status 3.
"""

import argparse
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid

DEFAULT_PROTO = (
    "/var/cache/myshim/cri-api/usr/share/gocode/src/k8s.io/cri-api/pkg/apis/runtime/v1/api.proto"
)
SERVICES = ("RuntimeService", "ImageService")


def generate(proto, out_dir):
    """api_pb2.py from api.proto into out_dir, without the gogoproto lines
    (an import and options that protoc cannot resolve without gogo.proto)."""
    with open(proto) as f:
        text = f.read()
    text = re.sub(r'^import "github.com/gogo/protobuf/gogoproto/gogo.proto";\n', "", text, flags=re.M)
    text = re.sub(r"^option \(gogoproto\.[^;]*;\n", "", text, flags=re.M)
    # Field options like [(gogoproto.nullable) = false] (none in v1 today).
    text = re.sub(r"\s*\[\(gogoproto\.[^\]]*\]", "", text)
    with open(os.path.join(out_dir, "api.proto"), "w") as f:
        f.write(text)
    subprocess.run(["protoc", "-I", out_dir, "--python_out", out_dir, "api.proto"], check=True)


class Client:
    def __init__(self, socket, proto=DEFAULT_PROTO, timeout=120):
        import grpc  # noqa: F401 (imported here so image-cmd needs no grpc)

        self._tmp = tempfile.mkdtemp(prefix="cri-py.")
        try:
            generate(proto, self._tmp)
            sys.path.insert(0, self._tmp)
            import api_pb2
        finally:
            shutil.rmtree(self._tmp, ignore_errors=True)
        self.pb = api_pb2
        self.grpc = grpc
        self.timeout = timeout
        self.channel = grpc.insecure_channel("unix://" + os.path.abspath(socket))
        self._methods = {}

    def method(self, name):
        """(stub, request class, response class) of RPC `name`."""
        if name not in self._methods:
            for svc in SERVICES:
                sd = self.pb.DESCRIPTOR.services_by_name[svc]
                md = sd.methods_by_name.get(name)
                if md is None:
                    continue
                req = getattr(self.pb, md.input_type.name)
                resp = getattr(self.pb, md.output_type.name)
                stub = self.channel.unary_unary(
                    f"/runtime.v1.{svc}/{name}",
                    request_serializer=req.SerializeToString,
                    response_deserializer=resp.FromString,
                )
                self._methods[name] = (stub, req, resp)
                break
            else:
                raise KeyError(f"no CRI method {name}")
        return self._methods[name]

    def call(self, name, request=None, timeout=None):
        """One call; `request` a message, a dict or None. Returns the reply message."""
        from google.protobuf import json_format

        stub, req_cls, _ = self.method(name)
        if request is None:
            request = req_cls()
        elif isinstance(request, dict):
            request = json_format.ParseDict(request, req_cls())
        return stub(request, timeout=timeout or self.timeout)

    def to_dict(self, msg):
        from google.protobuf import json_format

        # Defaults included: SANDBOX_READY and CONTAINER_CREATED are enum 0.
        d = json_format.MessageToDict(msg, preserving_proto_field_name=True, including_default_value_fields=True)
        # ExecSync's stdout/stderr: text, not base64.
        for f in msg.DESCRIPTOR.fields:
            if f.type == f.TYPE_BYTES and f.name in d:
                d[f.name] = getattr(msg, f.name).decode("utf-8", "replace")
        return d

    def cleanup(self):
        """Stops and removes every container and pod of this CRI, going on
        past errors (it runs after failures); the first error is raised."""
        errors = []

        def attempt(method, request):
            try:
                self.call(method, request)
            except self.grpc.RpcError as e:
                errors.append(e)

        for c in self.call("ListContainers").containers:
            attempt("StopContainer", {"container_id": c.id, "timeout": 0})
            attempt("RemoveContainer", {"container_id": c.id})
        for p in self.call("ListPodSandbox").items:
            attempt("StopPodSandbox", {"pod_sandbox_id": p.id})
            attempt("RemovePodSandbox", {"pod_sandbox_id": p.id})
        if errors:
            raise errors[0]


def pod_config(name, cgroup_parent, log_dir):
    """A pod on the host network (no CNI), its own pid namespace per container
    (kubelet's default), logs under log_dir."""
    return {
        "metadata": {"name": name, "uid": uuid.uuid4().hex, "namespace": "default", "attempt": 0},
        "log_directory": log_dir,
        "linux": {
            "cgroup_parent": cgroup_parent,
            "security_context": {"namespace_options": {"network": "NODE", "pid": "CONTAINER", "ipc": "POD"}},
        },
    }


PHASES = ("RunPodSandbox", "CreateContainer", "StartContainer", "StopPodSandbox", "RemovePodSandbox")


def bench(client, rounds, handlers, image, cgroup_parent, log_dir, warmup=1):
    """Per handler, seconds of each phase of each round (rounds interleaved
    across handlers, so drift on the machine hits all alike)."""
    times = {h: {p: [] for p in PHASES} for h in handlers}
    for i in range(-warmup, rounds):
        for h in handlers:
            name = f"bench-{h}-{i + warmup}"
            pod = pod_config(name, cgroup_parent, log_dir)
            cfg = {
                "metadata": {"name": "c", "attempt": 0},
                "image": {"image": image},
                "command": ["sleep", "1000"],
                "log_path": f"{name}.log",
                "linux": {"security_context": {"namespace_options": {"network": "NODE", "pid": "CONTAINER"}}},
            }
            t = [time.perf_counter()]
            pid = client.call("RunPodSandbox", {"config": pod, "runtime_handler": h}).pod_sandbox_id
            t.append(time.perf_counter())
            cid = client.call(
                "CreateContainer", {"pod_sandbox_id": pid, "config": cfg, "sandbox_config": pod}
            ).container_id
            t.append(time.perf_counter())
            client.call("StartContainer", {"container_id": cid})
            t.append(time.perf_counter())
            client.call("StopPodSandbox", {"pod_sandbox_id": pid})
            t.append(time.perf_counter())
            client.call("RemovePodSandbox", {"pod_sandbox_id": pid})
            t.append(time.perf_counter())
            if i >= 0:
                for p, a, b in zip(PHASES, t, t[1:]):
                    times[h][p].append(b - a)
    return times


def burst(client, pods, per_pod, handler, image, cgroup_parent, log_dir, parallel, prefix="burst"):
    """PODS pods of PER_POD containers started at once, `parallel` pods in
    flight (gRPC calls from one client; its channel is thread-safe). wall:
    first call to the last StartContainer's reply. failures: pods or
    containers that failed to start, or are not running at the end."""
    from concurrent.futures import ThreadPoolExecutor

    ops = {"RunPodSandbox": [], "CreateContainer": [], "StartContainer": []}
    errors = []
    sandboxes = set()

    def timed(method, request):
        t = time.perf_counter()
        try:
            return client.call(method, request)
        finally:
            ops[method].append(time.perf_counter() - t)  # list.append: atomic

    def one(i):
        """Failures of pod i (its sandbox failing counts all its containers)."""
        name = f"{prefix}-{i}"
        pod = pod_config(name, cgroup_parent, log_dir)
        try:
            pid = timed("RunPodSandbox", {"config": pod, "runtime_handler": handler}).pod_sandbox_id
        except client.grpc.RpcError as e:
            errors.append(f"{name}: RunPodSandbox: {e.code().name}: {e.details()}")
            return per_pod
        sandboxes.add(pid)
        failed = 0
        for k in range(per_pod):
            cfg = {
                "metadata": {"name": f"c{k}", "attempt": 0},
                "image": {"image": image},
                "command": ["sleep", "2147483647"],
                "log_path": f"{name}-c{k}.log",
                "linux": {"security_context": {"namespace_options": {"network": "NODE", "pid": "CONTAINER"}}},
            }
            try:
                cid = timed(
                    "CreateContainer", {"pod_sandbox_id": pid, "config": cfg, "sandbox_config": pod}
                ).container_id
                timed("StartContainer", {"container_id": cid})
            except client.grpc.RpcError as e:
                errors.append(f"{name}/c{k}: {e.code().name}: {e.details()}")
                failed += 1
        return failed

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        failures = sum(pool.map(one, range(pods)))
    wall = time.perf_counter() - start
    running = sum(
        1
        for c in client.call("ListContainers").containers
        if c.state == client.pb.CONTAINER_RUNNING and c.pod_sandbox_id in sandboxes
    )
    # A start that returned but whose container is gone by now counts too.
    failures = max(failures, pods * per_pod - running)
    t = os.times()
    return {"wall": wall, "failures": failures, "errors": errors[:20], "running": running,
            "client_cpu": t.user + t.system, "ops": ops}


def teardown(client, parallel):
    """Stops and removes every pod, `parallel` at a time (RemovePodSandbox
    removes its containers). Leftover containers outside pods go too."""
    from concurrent.futures import ThreadPoolExecutor

    errors = []

    def one(pid):
        for method in ("StopPodSandbox", "RemovePodSandbox"):
            try:
                client.call(method, {"pod_sandbox_id": pid})
            except client.grpc.RpcError as e:
                errors.append(f"{pid[:12]}: {method}: {e.code().name}: {e.details()}")
                return 1
        return 0

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=parallel) as pool:
        failures = sum(pool.map(one, [p.id for p in client.call("ListPodSandbox").items]))
    wall = time.perf_counter() - start
    return {"wall": wall, "failures": failures, "errors": errors[:20]}


def image_cmd(src, dst, name, cmd):
    """Rewrites an OCI layout tar of one manifest: config Cmd, image name."""
    with tarfile.open(src) as t:
        files = {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}

    def put(obj):
        data = json.dumps(obj, separators=(",", ":")).encode()
        digest = hashlib.sha256(data).hexdigest()
        files[f"blobs/sha256/{digest}"] = data
        return {"digest": f"sha256:{digest}", "size": len(data)}

    def get(desc):
        return json.loads(files["blobs/sha256/" + desc["digest"].split(":", 1)[1]])

    # Docker's manifest.json names the old config: not carried over.
    files.pop("manifest.json", None)
    index = json.loads(files["index.json"])
    mdesc = index["manifests"][0]
    manifest = get(mdesc)
    config = get(manifest["config"])
    config.setdefault("config", {})["Cmd"] = cmd
    config["config"].pop("Entrypoint", None)
    for old in (manifest["config"], mdesc):
        files.pop("blobs/sha256/" + old["digest"].split(":", 1)[1])
    manifest["config"].update(put(config))
    mdesc.update(put(manifest))
    mdesc.setdefault("annotations", {})["io.containerd.image.name"] = name
    index["manifests"] = [mdesc]
    files["index.json"] = json.dumps(index).encode()
    with tarfile.open(dst, "w") as t:
        for n, data in files.items():
            info = tarfile.TarInfo(n)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))


def main():
    ap = argparse.ArgumentParser(description="a small CRI client")
    ap.add_argument("-a", "--address", help="containerd's gRPC socket")
    ap.add_argument("--proto", default=os.environ.get("CRI_API_PROTO", DEFAULT_PROTO))
    ap.add_argument("--timeout", type=float, default=120, help="per call, seconds")
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("call")
    p.add_argument("method")
    p.add_argument("request", nargs="?", default="{}")
    p = sub.add_parser("exec")
    p.add_argument("container")
    p.add_argument("--exec-timeout", type=int, default=30)
    p.add_argument("argv", nargs="+")
    sub.add_parser("cleanup")
    p = sub.add_parser("bench")
    p.add_argument("rounds", type=int)
    p.add_argument("handlers", nargs="+")
    p.add_argument("--image", required=True)
    p.add_argument("--cgroup-parent", default="")
    p.add_argument("--log-dir", required=True)
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds per handler first")
    p = sub.add_parser("burst")
    p.add_argument("pods", type=int)
    p.add_argument("per_pod", type=int)
    p.add_argument("handler")
    p.add_argument("--parallel", type=int, default=20, help="pods in flight")
    p.add_argument("--image", required=True)
    p.add_argument("--cgroup-parent", default="")
    p.add_argument("--log-dir", required=True)
    p.add_argument("--prefix", default="burst", help="pod names PREFIX-I")
    p = sub.add_parser("teardown")
    p.add_argument("--parallel", type=int, default=20)
    p = sub.add_parser("image-cmd")
    p.add_argument("src")
    p.add_argument("dst")
    p.add_argument("name")
    p.add_argument("argv", nargs="+")
    args = ap.parse_args()

    if args.cmd == "image-cmd":
        image_cmd(args.src, args.dst, args.name, args.argv)
        return 0
    if not args.address:
        ap.error("-a SOCKET is needed")
    client = Client(args.address, args.proto, args.timeout)
    try:
        if args.cmd == "call":
            reply = client.call(args.method, json.loads(args.request))
            print(json.dumps(client.to_dict(reply)))
        elif args.cmd == "exec":
            r = client.call(
                "ExecSync",
                {"container_id": args.container, "cmd": args.argv, "timeout": args.exec_timeout},
            )
            sys.stdout.buffer.write(r.stdout)
            sys.stderr.buffer.write(r.stderr)
            return r.exit_code
        elif args.cmd == "cleanup":
            client.cleanup()
        elif args.cmd == "bench":
            times = bench(client, args.rounds, args.handlers, args.image, args.cgroup_parent, args.log_dir, args.warmup)
            print(json.dumps(times))
        elif args.cmd == "burst":
            r = burst(client, args.pods, args.per_pod, args.handler, args.image, args.cgroup_parent,
                      args.log_dir, args.parallel, args.prefix)
            print(json.dumps(r))
        elif args.cmd == "teardown":
            print(json.dumps(teardown(client, args.parallel)))
    except client.grpc.RpcError as e:
        print(f"{e.code().name}: {e.details()}", file=sys.stderr)
        return 3
    return 0


if __name__ == "__main__":
    sys.exit(main())
