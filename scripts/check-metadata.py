#!/usr/bin/env python3
"""CI: honest package metadata. The workspace's rust-version is at least every dependency's (so it states what
actually builds), and every published crate of the workspace has the fields crates.io shows.
Usage: scripts/check-metadata.py   (reads `cargo metadata`)"""
import json, subprocess, sys

meta = json.loads(subprocess.run(["cargo", "metadata", "--format-version", "1", "--locked"],
                                 capture_output=True, text=True, check=True).stdout)
members = set(meta["workspace_members"])
version = lambda v: tuple(int(x) for x in v.split("."))
ours = [p for p in meta["packages"] if p["id"] in members]
needed = max((version(p["rust_version"]), p["name"]) for p in meta["packages"]
             if p["id"] not in members and p.get("rust_version"))
problems = []
for p in ours:
    declared = p.get("rust_version")
    if not declared or version(declared) < needed[0]:
        problems.append(f"{p['name']}: rust-version {declared}, but {needed[1]} needs {'.'.join(map(str, needed[0]))}")
    if p.get("publish") == []:
        continue  # not published (cadet-report)
    for field in ["description", "license", "repository", "readme", "keywords", "categories"]:
        if not p.get(field):
            problems.append(f"{p['name']}: no {field}")
for line in problems:
    print("metadata:", line)
print(f"metadata: {len(ours)} crates checked, rust-version needed {'.'.join(map(str, needed[0]))} ({needed[1]})")
sys.exit(1 if problems else 0)
