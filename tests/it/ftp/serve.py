"""A real FTP server for tests/it/ftp.rs, with pyftpdlib (from PyPI, in the venv scripts/test makes).

    serve.py ROOT HOST [--user NAME:PASSWORD] [--masquerade ADDRESS] [--tls CERT KEY]

Serves ROOT read-only on HOST and a free port, anonymously and (with --user) to that user; prints the port
on its first line of output, then serves until killed. --masquerade makes its PASV answers name ADDRESS
instead of its own (a hostile server steering the data connection); --tls requires explicit TLS (AUTH TLS)
on the control and data connections.
"""
import argparse
import sys

from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("root")
    parser.add_argument("host")
    parser.add_argument("--user")
    parser.add_argument("--masquerade")
    parser.add_argument("--tls", nargs=2)
    args = parser.parse_args()
    authorizer = DummyAuthorizer()
    authorizer.add_anonymous(args.root)
    if args.user:
        name, password = args.user.split(":", 1)
        authorizer.add_user(name, password, args.root, perm="elr")
    if args.tls:
        from pyftpdlib.handlers import TLS_FTPHandler

        handler = TLS_FTPHandler
        handler.certfile, handler.keyfile = args.tls
        handler.tls_control_required = True
        handler.tls_data_required = True
    else:
        handler = FTPHandler
    handler.authorizer = authorizer
    if args.masquerade:
        handler.masquerade_address = args.masquerade
    server = FTPServer((args.host, 0), handler)
    print(server.address[1], flush=True)
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
