"""The team's hooks: the only model code a project owns, called by the lifecycle runtime.

A project's ``src/<package>/`` may hold three modules, each with one function:

* ``preprocessing.py``: ``build_preprocessor(features) -> transformer``, an unfitted scikit-learn
  transformer for the columns in ``features`` (column -> "numeric" | "categorical" | "date" |
  "dropped").
* ``candidates.py``: ``families(task) -> list[Family]``, the estimator families the search tries.
* ``metrics.py``: ``custom_metrics() -> list[Metric]``, metrics computed next to the built-in ones
  and selectable with ``--metric``.

A module that does not exist means the default. A module that exists must import and define its
function; a hook that raises or returns the wrong type is reported in one line naming the file,
the line and what was expected, never as a traceback of the runtime.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
import traceback
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import caused_by_interrupt
from .errors import HookError
from .metrics import METRICS, TASKS, Metric, Outcome

if TYPE_CHECKING:
    from .search_space import Family

__all__ = [
    "HOOKS",
    "Family",
    "Metric",
    "Outcome",
    "ProjectHooks",
    "default_families",
    "default_preprocessor",
    "load_hooks",
]


@dataclass(frozen=True)
class Hook:
    """One hook: its module in the package, its function and what it must return."""

    module: str
    function: str
    signature: str
    returns: str


HOOKS = (
    Hook("preprocessing", "build_preprocessor", "build_preprocessor(features)",
         "an unfitted scikit-learn transformer (with fit and transform)"),
    Hook("candidates", "families", "families(task)",
         "a non-empty list of mlscaffold.lifecycle.hooks.Family with distinct names"),
    Hook("metrics", "custom_metrics", "custom_metrics()",
         "a list of mlscaffold.lifecycle.hooks.Metric with new names"),
)
_BY_MODULE = {hook.module: hook for hook in HOOKS}


def __getattr__(name: str) -> Any:
    """`Family` imports scikit-learn's estimators (over a second), so it loads on first use:
    `list` and `promote` read only the metrics hook."""
    if name == "Family":
        from .search_space import Family

        return Family
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def default_preprocessor(features: dict[str, str]) -> Any:
    """The runtime's preprocessing: impute and scale numbers, impute and one-hot categories."""
    from .schema import build_preprocessor

    return build_preprocessor(features)


def default_families(task: str) -> list[Family]:
    """The runtime's candidate families for `task`, cheapest first."""
    from .search_space import families_for

    return families_for(task)


@dataclass
class ProjectHooks:
    """The hook functions of one project (defaults where the project has no module)."""

    root: Path | None = None
    package: str = ""
    functions: dict[str, Callable[..., Any]] = field(default_factory=dict)  # module -> function

    def preprocessor(self, features: dict[str, str]) -> Any:
        """A new unfitted transformer for `features` (called once per fold of the search, whose
        candidates share it, and once for the final model)."""
        function = self.functions.get("preprocessing")
        if function is None:
            return default_preprocessor(features)
        result = self._call("preprocessing", function, features)
        if not all(callable(getattr(result, name, None)) for name in ("fit", "transform",
                                                                      "get_params")):
            raise self._wrong_type("preprocessing", function, result)
        return result

    def families(self, task: str) -> list[Family]:
        from .search_space import Family

        function = self.functions.get("candidates")
        if function is None:
            return default_families(task)
        result = self._call("candidates", function, task)
        if (not isinstance(result, (list, tuple)) or not result
                or not all(isinstance(item, Family) for item in result)):
            raise self._wrong_type("candidates", function, result)
        if twice := _repeated(item.name for item in result):
            raise self._rejected(function, f"families() returned two families named {twice!r}",
                                 "give each family its own name")
        return list(result)

    def metrics(self) -> tuple[Metric, ...]:
        """The custom metrics; one raising while computed is reported like a hook (HookError)."""
        function = self.functions.get("metrics")
        if function is None:
            return ()
        result = self._call("metrics", function)
        if (not isinstance(result, (list, tuple))
                or not all(isinstance(item, Metric) for item in result)):
            raise self._wrong_type("metrics", function, result)
        for item in result:
            if item.name in METRICS:
                raise self._rejected(function, f"custom_metrics() returned a metric named "
                                               f"{item.name!r}, the name of a built-in metric",
                                     "give it a name of its own")
            unknown = [task for task in item.tasks if task not in TASKS]
            if unknown or not item.tasks:
                raise self._rejected(function, f"metric {item.name!r} has tasks "
                                               f"{list(item.tasks)!r}",
                                     f"list some of: {', '.join(TASKS)}")
        if twice := _repeated(item.name for item in result):
            raise self._rejected(function, f"custom_metrics() returned two metrics named "
                                           f"{twice!r}", "give each metric its own name")
        return tuple(replace(item, compute=self._guarded(item)) for item in result)

    @contextlib.contextmanager
    def blaming_project_code(self) -> Iterator[None]:
        """Turn an exception raised in the project's code (a candidate family's build, a custom
        transformer's fit) into a HookError naming its file and line; others pass unchanged."""
        try:
            yield
        except HookError:
            raise
        except Exception as error:
            where = _last_frame_in(error, self._source_dir())
            if where is None:
                raise
            raise HookError(f"{where}: {type(error).__name__}: {_first_line(error)}",
                            hint=f"fix the project's code in src/{self.package}/") from None

    def _guarded(self, metric: Metric) -> Callable[[Outcome], float]:
        compute = metric.compute

        def guarded(outcome: Outcome) -> float:
            try:
                return compute(outcome)
            except ValueError:
                raise  # undefined for this outcome (as for built-in metrics): shown as n/a
            except Exception as error:
                where = _last_frame_in(error, self._source_dir()) or _definition(compute)
                raise HookError(f"{where}: metric {metric.name!r} raised "
                                f"{type(error).__name__}: {_first_line(error)}",
                                hint=f"fix custom_metrics() in src/{self.package}/metrics.py",
                                ) from None

        return guarded

    def _call(self, module: str, function: Callable[..., Any], *args: Any) -> Any:
        try:
            return function(*args)
        except Exception as error:  # the team's code: report where it failed, in one line
            where = _last_frame_in(error, self._source_dir()) or _definition(function)
            hook = _BY_MODULE[module]
            raise HookError(f"{where}: {hook.function}() raised {type(error).__name__}: "
                            f"{_first_line(error)}",
                            hint=f"fix {hook.signature} in src/{self.package}/{module}.py",
                            ) from None

    def _wrong_type(self, module: str, function: Callable[..., Any], result: Any) -> HookError:
        hook = _BY_MODULE[module]
        return HookError(f"{_definition(function)}: {hook.function}() must return {hook.returns}, "
                         f"got {_describe(result)}")

    @staticmethod
    def _rejected(function: Callable[..., Any], problem: str, fix: str) -> HookError:
        return HookError(f"{_definition(function)}: {problem}", hint=fix)

    def _source_dir(self) -> Path | None:
        return None if self.root is None else self.root / "src" / self.package


def load_hooks(root: Path, package: str, modules: Collection[str] | None = None) -> ProjectHooks:
    """Import the hook modules of `package` from ``root/src`` (the project need not be installed);
    only those named in `modules` when given (a command that reads experiments needs only the
    metrics, and the others import scikit-learn's estimators).

    Raises HookError naming the file and line when a module fails to import or lacks its function.
    """
    source = Path(root).resolve() / "src"
    package_dir = source / package
    present = [hook for hook in HOOKS if (package_dir / f"{hook.module}.py").is_file()
               and (modules is None or hook.module in modules)]
    if not package_dir.is_dir():
        return ProjectHooks(Path(root).resolve(), package)
    # like an editable install: the project's package imports without `pip install -e .` (a
    # saved pipeline may use any of its code), and the hook modules are the project's, not a
    # same-named installed package
    _put_first_on_path(source)
    _forget_other_copies(package, package_dir)
    functions = {}
    for hook in present:
        path = package_dir / f"{hook.module}.py"
        name = f"{package}.{hook.module}"
        try:
            module = importlib.import_module(name)
        except Exception as error:  # SyntaxError, ImportError or the module's own code failing
            if caused_by_interrupt(error):  # Ctrl-C while a compiled module initialised
                raise KeyboardInterrupt from None
            where = _import_location(error, path)
            raise HookError(f"{where}: cannot import {name}: {type(error).__name__}: "
                            f"{_first_line(error)}", hint=f"fix src/{package}/{hook.module}.py") \
                from None
        if Path(getattr(module, "__file__", "") or "").resolve() != path.resolve():
            raise HookError(f"{path}: the package {package!r} imports from "
                            f"{getattr(module, '__file__', '?')} instead",
                            hint=f"uninstall the other {package!r} or rename the project's package")
        function = getattr(module, hook.function, None)
        if not callable(function):
            raise HookError(f"{path}: defines no function {hook.signature}",
                            hint=f"define it, or delete {path.name} to use the default")
        functions[hook.module] = function
    return ProjectHooks(Path(root).resolve(), package, functions)


def _put_first_on_path(source: Path) -> None:
    while str(source) in sys.path:
        sys.path.remove(str(source))
    sys.path.insert(0, str(source))
    importlib.invalidate_caches()  # the team may have added a module since the last import


def _forget_other_copies(package: str, package_dir: Path) -> None:
    """Drop modules of `package` imported from elsewhere (another project with the same package
    name opened earlier in this process), so the imports below read this project's files."""
    for name, module in list(sys.modules.items()):
        if name != package and not name.startswith(f"{package}."):
            continue
        file = getattr(module, "__file__", None)
        if file is None or not Path(file).resolve().is_relative_to(package_dir.resolve()):
            del sys.modules[name]


def _import_location(error: BaseException, path: Path) -> str:
    if isinstance(error, SyntaxError) and error.filename:
        return f"{error.filename}:{error.lineno}"
    return _last_frame_in(error, path.parent) or str(path)


def _last_frame_in(error: BaseException, directory: Path | None) -> str | None:
    """'file:line' of the innermost traceback frame in `directory` (the team's code)."""
    if directory is None:
        return None
    found = None
    for frame in traceback.extract_tb(error.__traceback__):
        if Path(frame.filename).resolve().is_relative_to(directory.resolve()):
            found = f"{frame.filename}:{frame.lineno}"
    return found


def _definition(function: Callable[..., Any]) -> str:
    try:
        _, line = inspect.getsourcelines(function)
        return f"{inspect.getsourcefile(function)}:{line}"
    except (OSError, TypeError):
        return getattr(function, "__qualname__", repr(function))


def _describe(value: Any) -> str:
    if isinstance(value, (list, tuple)):
        kinds = sorted({type(item).__name__ for item in value})
        return f"a {type(value).__name__} of {', '.join(kinds) or 'nothing'}"
    return type(value).__name__


def _repeated(names: Iterable[str]) -> str | None:
    seen: set[str] = set()
    for name in names:
        if name in seen:
            return name
        seen.add(name)
    return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"
