"""`make audit`: pip-audit over the installed environment, and an honest answer when it
could not look anything up.

pip-audit reports "No known vulnerabilities found" even when every lookup failed (each
package is then merely "skipped"), so this script reads its JSON and fails when packages
went unaudited. Exit codes: 0 clean, 1 vulnerabilities found, 3 the vulnerability data
could not be reached (offline, or a registry mirror without the JSON API). With
AUDIT_OFFLINE_OK=1, the last case prints the warning and exits 0 (CI on a machine that
reaches no vulnerability database); vulnerabilities found still fail.

    AUDIT_SERVICE   pypi (default) or osv
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent
UNREACHABLE = 3


def main() -> int:
    service = os.environ.get("AUDIT_SERVICE", "pypi")
    command = [
        str(BIN / "pip-audit"),
        "--vulnerability-service",
        service,
        "--skip-editable",
        "--progress-spinner",
        "off",
        "--format",
        "json",
        "--timeout",
        "30",
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError:
        return unreachable(service, result.stderr.strip().splitlines()[-1:] or ["no output"])

    deps = report.get("dependencies", [])
    vulnerable = [d for d in deps if d.get("vulns")]
    # The project itself is installed editable: not on PyPI, nothing to look up.
    skipped = [d for d in deps if "editable" not in d.get("skip_reason", "editable")]
    audited = [d for d in deps if "skip_reason" not in d]
    for dep in vulnerable:
        for vuln in dep["vulns"]:
            fixes = ", ".join(vuln.get("fix_versions", [])) or "no fix yet"
            print(f"{dep['name']} {dep['version']}: {vuln['id']} (fixed in: {fixes})")
    if vulnerable:
        print(f"audit: {len(vulnerable)} vulnerable package(s) of {len(deps)}.")
        return 1
    if not audited:
        reasons = sorted({d["skip_reason"].split(":")[0] for d in skipped}) or ["no packages"]
        return unreachable(service, reasons)
    if skipped:
        names = ", ".join(d["name"] for d in skipped)
        print(f"audit: {len(skipped)} package(s) could not be audited: {names}")
        return unreachable(service, [f"{len(audited)} audited, {len(skipped)} not"])
    print(f"audit: no known vulnerabilities in {len(audited)} packages ({service}).")
    return 0


def unreachable(service: str, reasons: list[str]) -> int:
    print(
        f"audit: pip-audit could not reach its vulnerability data ({service}): "
        + "; ".join(reasons)
        + ". Nothing was audited. Run `make audit` where PyPI's JSON API "
        "(AUDIT_SERVICE=pypi) or api.osv.dev (AUDIT_SERVICE=osv) can be reached.",
        file=sys.stderr,
    )
    if os.environ.get("AUDIT_OFFLINE_OK") == "1":
        print("audit: AUDIT_OFFLINE_OK=1, so this is a warning, not a failure.", file=sys.stderr)
        return 0
    return UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
