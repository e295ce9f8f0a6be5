"""Create, revoke and list the API keys of a stack deployed with AuthType CONDUCTOR_KEYS.

A key is a keyId and a keySecret, what Conductor's SDKs take (``AuthenticationSettings(key_id,
key_secret)``, or CONDUCTOR_AUTH_KEY / CONDUCTOR_AUTH_SECRET). The table keeps only a salted scrypt
hash of the secret: ``create`` prints the secret once, and it cannot be shown again. ``revoke``
stops a key at once for POST /api/token; tokens already issued for it stop working when the
authorizer next checks them (API Gateway caches its answer per token for up to 5 minutes).

usage: python scripts/conductor_keys.py (--stack NAME | --table NAME) [--region R] create [--description TEXT]
       python scripts/conductor_keys.py (--stack NAME | --table NAME) [--region R] revoke KEY_ID
       python scripts/conductor_keys.py (--stack NAME | --table NAME) [--region R] list
(``make keys ARGS="..."`` runs it in the project's environment.)
"""

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "functions" / "api"))

from workflow_api.adapters.api_keys import ApiKeyStore
from workflow_api.keys import hash_key, new_key_id, new_key_secret


def table_of_stack(stack: str, region: str | None) -> str:
    """The stack's table (its IdempotencyTableName output), checking the stack uses key auth."""
    cloudformation = boto3.client("cloudformation", region_name=region)
    (description,) = cloudformation.describe_stacks(StackName=stack)["Stacks"]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in description.get("Outputs", [])}
    parameters = {p["ParameterKey"]: p.get("ParameterValue") for p in description.get("Parameters", [])}
    if parameters.get("AuthType") != "CONDUCTOR_KEYS":
        print(
            f"note: stack {stack} has AuthType {parameters.get('AuthType')}, not CONDUCTOR_KEYS:"
            " its API ignores these keys",
            file=sys.stderr,
        )
    return outputs["IdempotencyTableName"]


def main(argv: list[str] | None = None, dynamodb: Any = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--stack", help="the CloudFormation stack (sam deploy's stack name)")
    where.add_argument("--table", help="the stack's table name, if you know it (its IdempotencyTableName output)")
    parser.add_argument("--region", default=None)
    commands = parser.add_subparsers(dest="command", required=True)
    create = commands.add_parser("create", help="a new key: prints its keyId and keySecret, once")
    create.add_argument("--description", default="", help="who or what the key is for")
    revoke = commands.add_parser("revoke", help="revoke a key for good")
    revoke.add_argument("key_id")
    commands.add_parser("list", help="every key: id, created, revoked, description (never a secret)")
    args = parser.parse_args(argv)

    table = args.table or table_of_stack(args.stack, args.region)
    store = ApiKeyStore(table, dynamodb or boto3.client("dynamodb", region_name=args.region))
    if args.command == "create":
        key_id, secret = new_key_id(), new_key_secret()
        store.put(hash_key(key_id, secret), args.description)
        print(json.dumps({"keyId": key_id, "keySecret": secret}))
        print("The keySecret is shown only now: keep it (the table holds only its hash).", file=sys.stderr)
    elif args.command == "revoke":
        if not store.revoke(args.key_id):
            print(f"no key {args.key_id}", file=sys.stderr)
            return 1
        print(json.dumps({"keyId": args.key_id, "revoked": True}))
    else:
        for key in store.list():
            print(json.dumps(key))
    return 0


if __name__ == "__main__":
    sys.exit(main())
