"""A stand-in for `kubectl`, driven by a scenario (tests/lifecycle/test_eks_job.py).

Installed as `kubectl` on PATH; $FAKE_KUBECTL_DIR holds scenario.json:

    {"polls": [{"job": JOB, "pods": [POD, ...]}, ...],   # one per `get job`, the last repeats
     "logs": ["line", ...], "logs_error": "text",         # `logs`: its lines, then the error
     "events": [EVENT, ...], "events_error": "text",      # `get events`: each call
     "fail": {"VERB": "text"}}                            # VERB exits 1 with text on stderr

and receives calls.jsonl (each call's arguments after --kubeconfig PATH) and applied.json
(what `apply -f -` read). Standard library only: it starts with `python -IS`.
"""

import json
import os
import sys
from pathlib import Path

root = Path(os.environ["FAKE_KUBECTL_DIR"])
args = sys.argv[1:]
if args[:1] == ["--kubeconfig"]:
    args = args[2:]
with (root / "calls.jsonl").open("a") as calls:
    calls.write(json.dumps(args) + "\n")
scenario = json.loads((root / "scenario.json").read_text())
words = args[2:] if args[:1] == ["-n"] else args
verb = words[0]
if verb in scenario.get("fail", {}):
    sys.stderr.write(f"Error from server: {scenario['fail'][verb]}\n")
    sys.exit(1)
counter = root / "polls"
if verb == "apply":
    (root / "applied.json").write_text(sys.stdin.read())
    print("job.batch/training created")
elif verb == "get" and words[1] == "job":
    done = int(counter.read_text()) if counter.exists() else 0
    counter.write_text(str(done + 1))
    polls = scenario["polls"]
    print(json.dumps(polls[min(done, len(polls) - 1)]["job"]))
elif verb == "get" and words[1] == "pods":
    polls = scenario["polls"]
    current = max(int(counter.read_text()) - 1, 0) if counter.exists() else 0
    print(json.dumps({"items": polls[min(current, len(polls) - 1)]["pods"]}))
elif verb == "get" and words[1] == "events":
    if scenario.get("events_error"):
        sys.stderr.write(f"Error from server (Forbidden): {scenario['events_error']}\n")
        sys.exit(1)
    print(json.dumps({"items": scenario.get("events", [])}))
elif verb == "logs":
    for line in scenario.get("logs", []):
        print(line)
    if scenario.get("logs_error"):
        sys.stderr.write(f"Error from server: {scenario['logs_error']}\n")
        sys.exit(1)
elif verb == "delete":
    print(f'job.batch "{words[2]}" deleted')
else:
    sys.stderr.write(f"fake kubectl: no answer for {args}\n")
    sys.exit(2)
