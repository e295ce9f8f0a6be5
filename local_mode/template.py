"""Read template.yaml as CloudFormation would, for the few intrinsics this project uses.

Local mode builds its resources from the template itself, so there is no second copy to drift.
"""

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE = ROOT / "template.yaml"


class _Loader(yaml.SafeLoader):
    """YAML with CloudFormation's short-form tags (!Ref, !Sub, !GetAtt, ...)."""


def _construct(tag: str) -> Callable[[yaml.SafeLoader, yaml.Node], dict[str, Any]]:
    name = "Ref" if tag == "Ref" else f"Fn::{tag}"

    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        value: Any
        if isinstance(node, yaml.ScalarNode):
            value = loader.construct_scalar(node)
            if tag == "GetAtt":
                value = str(value).split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
        return {name: value}

    return construct


for _tag in (
    "Ref",
    "Sub",
    "GetAtt",
    "If",
    "Equals",
    "Not",
    "And",
    "Or",
    "Join",
    "Select",
    "Split",
    "Condition",
    "Base64",
    "FindInMap",
):
    _Loader.add_constructor(f"!{_tag}", _construct(_tag))


def load(path: Path = TEMPLATE) -> dict[str, Any]:
    with path.open() as stream:
        document: dict[str, Any] = yaml.load(stream, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass
    return document


class Resolver:
    """Evaluates intrinsic functions against known parameter values, refs and attributes."""

    def __init__(
        self,
        template: Mapping[str, Any],
        refs: Mapping[str, Any],
        attributes: Mapping[tuple[str, str], Any],
    ) -> None:
        self.template = template
        self.refs = dict(refs)
        self.attributes = dict(attributes)

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.template.get("Conditions", {})[name]))

    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [self.resolve(item) for item in value]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            handler = getattr(self, "_" + key.replace("Fn::", "").lower(), None)
            if key == "Ref" or key.startswith("Fn::") or key == "Condition":
                if handler is None:
                    raise NotImplementedError(f"local mode does not evaluate {key}")
                return handler(arg)
        return {key: self.resolve(item) for key, item in value.items()}

    def _ref(self, name: str) -> Any:
        if name not in self.refs:
            raise KeyError(f"template refers to {name}, which local mode does not know")
        return self.refs[name]

    def _getatt(self, arg: list[str]) -> Any:
        return self.attributes[(arg[0], arg[1])]

    def _sub(self, arg: str | list[Any]) -> str:
        text, extra = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))
        out, rest = [], text
        while "${" in rest:
            before, _, after = rest.partition("${")
            name, _, rest = after.partition("}")
            out.append(before)
            if name.startswith("!"):
                out.append("${" + name[1:] + "}")
            elif name in extra:
                out.append(str(extra[name]))
            elif "." in name:
                logical, attribute = name.split(".", 1)
                out.append(str(self.attributes[(logical, attribute)]))
            else:
                out.append(str(self._ref(name)))
        out.append(rest)
        return "".join(out)

    def _if(self, arg: list[Any]) -> Any:
        name, when_true, when_false = arg
        return self.resolve(when_true if self.condition(name) else when_false)

    def _equals(self, arg: list[Any]) -> bool:
        left, right = self.resolve(arg)
        return bool(str(left) == str(right))

    def _not(self, arg: list[Any]) -> bool:
        return not self.resolve(arg[0])

    def _and(self, arg: list[Any]) -> bool:
        return all(self.resolve(arg))

    def _or(self, arg: list[Any]) -> bool:
        return any(self.resolve(arg))

    def _condition(self, name: str) -> bool:
        return self.condition(name)

    def _join(self, arg: list[Any]) -> str:
        separator, items = arg
        return str(separator).join(str(i) for i in self.resolve(items))

    def _select(self, arg: list[Any]) -> Any:
        index, items = self.resolve(arg)
        return items[int(index)]

    def _split(self, arg: list[Any]) -> list[str]:
        separator, text = self.resolve(arg)
        return str(text).split(str(separator))


def parameter_defaults(template: Mapping[str, Any]) -> dict[str, Any]:
    return {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}
