"""Scaffold a workflow in this repo: `make new-workflow NAME=order_review`.

Writes the three things a workflow of this stack is made of, and nothing else:
- statemachine/<name>.v1.asl.json, one Lambda task ("work") to grow from;
- functions/<name>/app.py, that task's handler;
- in template.yaml: the function (with its log group, as every function here has) and one
  AWS::Serverless::StateMachine tagged workflow:name and workflow:version, which is all the
  API needs to find it (README "Add your workflow").
`make run` serves it at once; `sam deploy` deploys it. No other file lists workflows.
"""

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NAME = re.compile(r"[a-z][a-z0-9_]{0,62}")

HANDLER = '''"""Task handler for the ``work`` state of the ``{name}`` workflow (scaffolded: make it yours)."""

from typing import Any


def handler(event: dict[str, Any], context: object) -> dict[str, Any]:
    """``event`` is ``{{"input": <the run's input>}}``, built by the state's ``Parameters``; what
    this returns is the run's output (Conductor's ``output``)."""
    return {{"workflow": "{name}", "received": event.get("input")}}
'''

RESOURCES = """
  {camel}Function:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/{name}/
      Handler: app.handler
      LoggingConfig:
        LogGroup: !Ref {camel}Logs
      Description: {name} task "work".

  {camel}Logs:
    Type: AWS::Logs::LogGroup
    DeletionPolicy: Delete
    UpdateReplacePolicy: Delete
    Properties:
      LogGroupName: !Sub "/aws/lambda/${{AWS::StackName}}/{camel}Function"
      RetentionInDays: !Ref LogRetentionDays

  {camel}V1StateMachine:
    Type: AWS::Serverless::StateMachine
    Properties:
      Type: STANDARD
      DefinitionUri: statemachine/{name}.v1.asl.json
      DefinitionSubstitutions:
        {camel}FunctionArn: !GetAtt {camel}Function.Arn
      Policies:
        - LambdaInvokePolicy:
            FunctionName: !Ref {camel}Function
      Tracing:
        Enabled: true
      # What makes it a workflow of the API (catalog.py): its Conductor name and version.
      Tags:
        "workflow:name": {name}
        "workflow:version": "1"
"""


def definition(name: str, camel: str) -> dict[str, object]:
    return {
        "Comment": f"{name} version 1 (scaffolded by make new-workflow).",
        "StartAt": "work",
        "States": {
            "work": {
                "Type": "Task",
                "Resource": f"${{{camel}FunctionArn}}",
                "Parameters": {"input.$": "$"},
                # Lambda's own transient failures, retried as the demo workflows do.
                "Retry": [
                    {
                        "ErrorEquals": [
                            "Lambda.ServiceException",
                            "Lambda.AWSLambdaException",
                            "Lambda.SdkClientException",
                            "Lambda.TooManyRequestsException",
                        ],
                        "IntervalSeconds": 1,
                        "MaxAttempts": 2,
                        "BackoffRate": 2,
                    }
                ],
                "End": True,
            }
        },
    }


def scaffold(name: str, root: Path = ROOT) -> list[Path]:
    """Write the workflow's files under ``root``; answers what it wrote. Refuses a name that is
    taken, before writing anything."""
    if not NAME.fullmatch(name):
        raise ValueError(f"NAME must be lower case letters, digits and _, starting with a letter: {name!r}")
    camel = "".join(part.capitalize() for part in name.split("_") if part)
    template = root / "template.yaml"
    text = template.read_text()
    asl, code = root / "statemachine" / f"{name}.v1.asl.json", root / "functions" / name / "app.py"
    taken = [str(p.relative_to(root)) for p in (asl, code.parent) if p.exists()]
    resource_ids = (f"{camel}Function", f"{camel}Logs", f"{camel}V1StateMachine")
    taken += [f"template.yaml: {lid}" for lid in resource_ids if f"\n  {lid}:" in text]
    if f'"workflow:name": {name}\n' in text:
        taken.append(f"template.yaml: a state machine tagged workflow:name {name}")
    if taken:
        raise FileExistsError(f"{name} exists already: {', '.join(taken)}")
    resources, outputs = text.split("\nOutputs:", 1) if "\nOutputs:" in text else (text, None)
    resources = resources.rstrip("\n") + "\n" + RESOURCES.format(name=name, camel=camel)
    asl.write_text(json.dumps(definition(name, camel), indent=2) + "\n")
    code.parent.mkdir(parents=True)
    code.write_text(HANDLER.format(name=name))
    template.write_text(resources if outputs is None else f"{resources}\nOutputs:{outputs}")
    return [asl, code, template]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("name", help="the workflow's Conductor name, e.g. order_review")
    parser.add_argument("--root", type=Path, default=ROOT, help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        written = scaffold(args.name, args.root)
    except (ValueError, FileExistsError) as refused:
        sys.exit(f"make new-workflow: {refused}")
    for path in written:
        print(f"  wrote {path.relative_to(args.root)}")
    print(f"Run it: make run, then POST /api/workflow/execute/{args.name} (README 'Add your workflow').")


if __name__ == "__main__":
    main()
