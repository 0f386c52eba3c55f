"""A child process for the encrypted file store's crash and race tests (run with ``sys.executable``).

``crash_writer.py loop DIRECTORY`` saves new versions of a few records in a tight loop until it is killed; it
prints ``ready`` once its store object exists. Record ``n`` of version ``v`` is
``record_version(n, v)``.

``crash_writer.py once DIRECTORY START INDEX [PASSWORD]`` waits until the wall clock reaches ``START``, then saves
one record (``race_record(INDEX)``) and prints ``saved``: several of them started together race to set up the store.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from mcp_oauth_auth.records import CredentialRecord
from mcp_oauth_auth.storage import encrypted_file, master_key
from tests.storage.contract import make_record

RECORDS = 3
TEST_SCRYPT_N = 2**4


def record_version(n: int, version: int) -> CredentialRecord:
    return make_record(resource=f"https://mcp.example.com/crash/{n}", access_token=f"version-{version}")


def race_record(index: int) -> CredentialRecord:
    return make_record(resource=f"https://mcp.example.com/race/{index}", access_token=f"process-{index}")


def main(argv: list[str]) -> None:
    mode, directory = argv[0], argv[1]
    if mode == "loop":
        store = encrypted_file.EncryptedFileTokenStore(directory, use_keyring=False)
        print("ready", flush=True)
        version = 0
        while True:
            for n in range(RECORDS):
                store.save(record_version(n, version))
            version += 1
    elif mode == "once":
        start, index = float(argv[2]), int(argv[3])
        password = argv[4] if len(argv) > 4 else None
        master_key._SCRYPT_N = TEST_SCRYPT_N
        store = encrypted_file.EncryptedFileTokenStore(directory, password, use_keyring=False)
        while time.time() < start:
            time.sleep(0.001)
        store.save(race_record(index))
        print("saved", flush=True)
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
