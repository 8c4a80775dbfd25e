"""A real SMTP server for the invitation tests (aiosmtpd, as Debian ships it).

    python3 tests/smtp/smtpd.py PORT DIR

Listens on 127.0.0.1:PORT and writes each message it accepts to DIR as
NNNN.eml (written whole, then renamed, so a reader never sees half a
message). While DIR/refuse holds a number N > 0, it answers the next N
messages with 451 (a temporary failure, as a busy or greylisting server
does) and counts N down. Prints "ready" once it listens; runs until killed.
"""

import asyncio
import os
import signal
import sys

from aiosmtpd.controller import Controller


class Store:
    def __init__(self, directory):
        self.directory = directory
        self.count = len([n for n in os.listdir(directory) if n.endswith(".eml")])

    def refusals_left(self):
        path = os.path.join(self.directory, "refuse")
        try:
            with open(path) as f:
                n = int(f.read().strip() or "0")
        except FileNotFoundError:
            return False
        if n <= 0:
            return False
        with open(path + ".tmp", "w") as f:
            f.write(str(n - 1))
        os.replace(path + ".tmp", path)
        return True

    async def handle_DATA(self, server, session, envelope):
        if self.refusals_left():
            return "451 4.3.0 Try again later"
        self.count += 1
        name = os.path.join(self.directory, "%04d.eml" % self.count)
        with open(name + ".tmp", "wb") as f:
            f.write(envelope.original_content or envelope.content)
        os.replace(name + ".tmp", name)
        return "250 2.0.0 OK"


def main():
    port, directory = int(sys.argv[1]), sys.argv[2]
    os.makedirs(directory, exist_ok=True)
    controller = Controller(Store(directory), hostname="127.0.0.1", port=port)
    controller.start()
    print("ready", flush=True)
    stop = asyncio.new_event_loop()
    signal.signal(signal.SIGTERM, lambda *_: stop.call_soon_threadsafe(stop.stop))
    try:
        stop.run_forever()
    finally:
        controller.stop()


if __name__ == "__main__":
    main()
