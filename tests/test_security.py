"""What is committed: no credentials, no pickles, no shells, models loaded safely."""

import re
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CREDENTIAL_PATTERNS = {
    "AWS access key id": re.compile(r"AKIA[0-9A-Z]{16}"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "password or secret assignment": re.compile(
        r"(?i)\b(password|passwd|secret_access_key|access_key_id|token)\s*[=:]\s*['\"]?[A-Za-z0-9/+]{8,}"
    ),
    "credentials in a URL": re.compile(r"[a-z][a-z0-9+.-]*://[^/\s:@'\"]+:[^/\s@'\"]+@"),
}

# Written as patterns (spaces allowed around '='), so this file does not itself contain what it forbids.
FORBIDDEN_CALLS = [
    re.compile(r"allow_pickle\s*=\s*True"),
    re.compile(r"shell\s*=\s*True"),
    re.compile(r"safe_mode\s*=\s*False"),
    re.compile(r"pickle\.loads?\("),
]


def tracked_text_files() -> list[Path]:
    listing = subprocess.run(["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True)
    paths = [REPO / name for name in listing.stdout.split("\0") if name and not name.endswith(".png")]
    return [path for path in paths if path.is_file() and path.name != "test_security.py"]


def test_no_credential_looking_value_is_committed():
    found = []
    for path in tracked_text_files():
        text = path.read_text(encoding="utf-8", errors="ignore")
        for what, pattern in CREDENTIAL_PATTERNS.items():
            found += [f"{path.relative_to(REPO)}: {what}: {match.group(0)[:12]}…" for match in pattern.finditer(text)]
    assert not found, found


def test_remote_credentials_go_to_the_git_ignored_local_config():
    assert "/config.local" in (REPO / ".dvc" / ".gitignore").read_text().split()
    config = (REPO / ".dvc" / "config").read_text()
    assert not re.search(r"(?i)^\s*(password|secret_access_key|access_key_id|token|user)\s*=", config, re.M)


def test_the_code_never_loads_pickles_runs_shells_or_loads_models_unsafely():
    sources = [*(REPO / "src").rglob("*.py"), *(REPO / "stages").glob("*.py"), *(REPO / "benchmarks").glob("*.py")]
    for path in sources:
        text = path.read_text()
        for forbidden in FORBIDDEN_CALLS:
            assert not forbidden.search(text), f"{path.relative_to(REPO)}: {forbidden.pattern}"
