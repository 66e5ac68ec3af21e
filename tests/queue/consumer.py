"""A consumer in its own process, for the tests that kill one. Prints one JSON line per message.

    python consumer.py die|hang|drain <location> <queue-name> <visibility-timeout>

die: receive one message and `os._exit` without completing it; hang: receive one and wait to be killed;
drain: receive and complete until the queue looks empty.
"""

import json
import os
import sys
import time

from scanner.queue import open_queue


def main() -> None:
    mode, location, name, lease = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    queue = open_queue(location, name)
    if mode == "drain":
        while batch := queue.receive(max_messages=4, visibility_timeout=lease):
            for message in batch:
                queue.complete(message)
                print(json.dumps({"id": message.id, "request_id": message.request.request_id}), flush=True)
        return
    (message,) = queue.receive(max_messages=1, visibility_timeout=lease)
    print(json.dumps({"id": message.id, "dequeue_count": message.dequeue_count}), flush=True)
    if mode == "die":
        os._exit(3)  # no cleanup, no complete: as a crash mid-scan
    time.sleep(120)


if __name__ == "__main__":
    main()
