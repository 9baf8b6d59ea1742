#!/usr/bin/python3
"""A stand-in for systemd's notification socket: binds an AF_UNIX datagram socket, prints every
message it receives (one line each, fields joined by '|'), and closes any file descriptors sent
with it (systemd-notify's BARRIER=1), so the sender's barrier completes as with real systemd."""
import os, socket, sys

path = sys.argv[1]
if os.path.exists(path):
    os.unlink(path)
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path)
print('LISTENING', flush=True)
while True:
    msg, fds, flags, addr = socket.recv_fds(s, 65536, 16)
    for fd in fds:
        os.close(fd)
    text = msg.decode('utf-8', 'replace').strip()
    if text:
        print(text.replace('\n', '|'), flush=True)
