"""Summarises Schemathesis NDJSON reports: failing test cases by check, by operation, and the
distinct (check, operation, message) reasons. Usage: summarize.py REPORT.ndjson... [--top N]"""

import collections
import json
import sys


def main(argv):
    top = 25
    if "--top" in argv:
        i = argv.index("--top")
        top = int(argv[i + 1])
        del argv[i : i + 2]
    for path in argv:
        by_check = collections.Counter()
        by_operation = collections.Counter()
        reasons = collections.Counter()
        operations = set()
        failing_operations = set()
        cases = 0
        for line in open(path, encoding="utf-8"):
            event = json.loads(line)
            if "LoadingFinished" in event:
                stats = event["LoadingFinished"]["statistic"]["operations"]
                selected = f"{stats['selected']}/{stats['total']}"
            scenario = event.get("ScenarioFinished")
            if not scenario:
                continue
            recorder = scenario["recorder"]
            label = recorder["label"]
            operations.add(label)
            for case_id, checks in recorder.get("checks", {}).items():
                cases += 1
                status = recorder["interactions"].get(case_id, {}).get("response", {}) or {}
                status = status.get("status_code")
                for check in checks:
                    if check["status"] != "failure":
                        continue
                    failure = check["failure_info"]["failure"]
                    name = f"{failure.get('code', '')} {failure['title']} ({check['name']})"
                    by_check[name] += 1
                    by_operation[label] += 1
                    failing_operations.add(label)
                    message = " ".join(failure.get("message", "").split())[:160]
                    reasons[(name, label, status, message)] += 1
        print(f"== {path}: {selected} operations selected, {len(operations)} run, "
              f"{len(failing_operations)} failing, {cases} checked cases")
        print("-- failing cases by check")
        for name, count in by_check.most_common():
            print(f"{count:6} {name}")
        print(f"-- top {top} operations by failing cases")
        for label, count in by_operation.most_common(top):
            print(f"{count:6} {label}")
        print(f"-- top {top} reasons (check, operation, status, message)")
        for (name, label, status, message), count in reasons.most_common(top):
            print(f"{count:6} {name.split(' ')[0]} {label} [{status}] {message}")


if __name__ == "__main__":
    main(sys.argv[1:])
