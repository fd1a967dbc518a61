"""Following a training script's code, without running it, to the models it builds and compiles.

An abstract interpreter over :mod:`ast`: it executes the straight-line code of a module (and of
the functions it calls, with the arguments of the call) on values it can know: constants, lists,
imported names, Keras layers, the tensor coming out of each layer (its units and the activations
since the last ``Dense``), models, losses, metrics and the label encodings that transforms prove
(``to_categorical``, ``np.eye(K)[y]``, ``LabelEncoder``, a Keras dataset's ``load_data``...).
Everything else is :data:`UNKNOWN`, and an unknown never becomes a finding: precision first.

* ``Sequential([...])``, ``.add(...)``, the functional API (``Dense(...)(x)``, ``Model(inputs,
  outputs)``) and subclassed models (layers set in ``__init__``, applied in ``call``);
* ``if``, ``for``, ``while`` and ``try`` are not followed: every name they assign becomes unknown,
  a model they change (``add``, ``compile``, passed to an unknown function) becomes unknown, and
  only the labels of the ``fit`` calls inside them are read. ``with`` blocks and
  ``if __name__ == "__main__":`` are followed;
* a function is followed where it is called with known arguments, and once more at the end, with
  its defaults, when no straight-line code called it; recursion and depth beyond
  :data:`MAX_DEPTH` give unknown.

Each ``compile`` of a known model is a :class:`Check`: the head at that moment, the loss and the
metrics, and the labels of the ``fit``/``evaluate`` calls that follow it.

Why one module of about 1560 lines: most of it is one class, :class:`Interpreter`, whose methods
for statements, expressions and calls (Keras, NumPy, scikit-learn, the user's own functions)
recurse into one another over one frame stack and one budget; the value classes defined before it
are what it passes between them. Splitting the class into mixins would scatter one recursion
over several files without separating anything that changes apart. What a qualified name is
lives in :mod:`~lossaudit.script.names`, the Keras family in :mod:`~lossaudit.script.family`.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from lossaudit.core.names import ACTIVATIONS, normalise_activation, normalise_metric_name
from lossaudit.script.names import (
    ACTIVATION_LAYERS,
    BENIGN_KERAS,
    BENIGN_PREFIXES,
    FIT_METHODS,
    KERAS1_ARGUMENTS,
    KERAS_DATASETS,
    LOSS_CLASSES_WITH_LOGITS_FIRST,
    NORMALIZATION_LAYERS,
    OPAQUE_LAYERS,
    PASSTHROUGH_LAYERS,
    READ_ONLY_MODEL_METHODS,
    SKLEARN_LOADERS,
    KerasName,
    activation_of_name,
    keras_name,
    tensorflow_name,
)

MAX_DEPTH = 6
"""Nested calls of the script's own functions followed; deeper calls give unknown."""
BUDGET = 300_000
"""Expressions evaluated per file before the interpreter gives up on it (no findings)."""


class _Unknown:
    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN = _Unknown()
"""What the interpreter cannot know."""


class BudgetExceeded(Exception):
    """The file needs more evaluation than :data:`BUDGET`: nothing is reported for it."""


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Site:
    """A node of one code unit (a file, or a notebook cell)."""

    unit: int
    node: ast.AST


@dataclass(frozen=True)
class Const:
    value: object


@dataclass(frozen=True)
class Seq:
    items: tuple[object, ...]
    nodes: tuple[ast.expr | None, ...] = ()


@dataclass(frozen=True)
class Ref:
    """An imported module or object, by qualified name (``tensorflow.keras.layers.Dense``)."""

    name: str


@dataclass(frozen=True)
class Step:
    """An activation applied on the way from the last Dense to the output."""

    name: str
    """Canonical name (a name Keras does not know stays as written)."""
    site: Site
    """The call applying it: ``Dense(...)``, ``Activation(...)``, ``Softmax()``, ``tf.nn.softmax(x)``."""
    arg: ast.expr | None
    """The argument node naming the activation (``activation='softmax'``), None when implicit."""
    kind: str
    """``dense``, ``layer`` (Activation/Softmax/... layers) or ``function`` (``tf.nn.softmax(x)``)."""


@dataclass(frozen=True)
class Tensor:
    """What a layer outputs, as far as the head is concerned."""

    units: int | None
    """Units of the last Dense; None when the last layer that set the width was not a Dense."""
    dense: Site | None
    units_arg: ast.expr | None
    chain: tuple[Step, ...]
    package: str | None


NOT_A_HEAD = Tensor(None, None, None, (), None)


@dataclass(frozen=True)
class Layer:
    kind: str
    """``dense``, ``activation``, ``passthrough``, ``normalization``, ``other`` or ``opaque``."""
    site: Site
    package: str | None
    units: int | None = None
    units_arg: ast.expr | None = None
    activation: str | None = None
    """Canonical activation; None when unknown."""
    activation_arg: ast.expr | None = None


@dataclass(frozen=True)
class Activation:
    """An activation function or object used as a value (``activation=tf.nn.softmax``)."""

    name: str


@dataclass(frozen=True)
class LossValue:
    name: str
    """As written for a string (``"bce"``, a typo); the function or class name otherwise."""
    from_logits: bool
    label_smoothing: float
    site: Site
    form: str
    """``string``, ``function`` or ``object`` (a loss class called with its arguments)."""


@dataclass(frozen=True)
class MetricValue:
    name: str
    site: Site
    judged: bool = True
    """False for a metric object built with arguments that change what it computes (a
    BinaryAccuracy with its own threshold): the rules leave it alone."""


@dataclass(frozen=True)
class Labels:
    """Labels whose encoding the code proves."""

    encoding: str
    """``one_hot``, ``multi_hot``, ``index`` or ``binary``."""
    classes: int | None
    origin: str
    site: Site
    column: bool = False
    """Index labels of shape (n, 1) (CIFAR's)."""


@dataclass(frozen=True)
class OneHotTable:
    """``np.eye(K)``: indexing it with labels makes them one-hot."""

    classes: int


@dataclass(frozen=True)
class Encoder:
    """A scikit-learn label encoder (``label``, ``onehot``, ``binarizer``, ``multilabel``)."""

    kind: str


@dataclass(frozen=True)
class Shape:
    of: Labels


@dataclass(frozen=True)
class Column:
    """One column of a table (``df["label"]``): a single value per sample, encoding unknown."""


@dataclass(frozen=True)
class Bunch:
    """A scikit-learn dataset object: ``.target`` holds its labels."""

    labels: Labels


class Scope:
    def __init__(self, parent: Scope | None = None) -> None:
        self.vars: dict[str, object] = {}
        self.parent = parent

    def lookup(self, name: str) -> object | None:
        scope: Scope | None = self
        while scope is not None:
            if name in scope.vars:
                return scope.vars[name]
            scope = scope.parent
        return None


@dataclass(eq=False)
class Function:
    node: ast.FunctionDef | ast.AsyncFunctionDef
    unit: int
    scope: Scope
    defaults: tuple[object, ...]
    kw_defaults: tuple[object | None, ...]
    bound: object | None = None
    owner: ClassValue | None = None
    """The class whose body defines it (for ``super()``)."""

    def bind(self, instance: object) -> Function:
        return Function(
            self.node, self.unit, self.scope, self.defaults, self.kw_defaults, instance, self.owner
        )


@dataclass(eq=False)
class ClassValue:
    node: ast.ClassDef
    unit: int
    methods: dict[str, Function]
    model_package: str | None
    """The Keras package of its ``Model`` base; None for a class that is not a Keras model."""
    instantiated: bool = False
    bases: tuple[ClassValue, ...] = ()


@dataclass(eq=False)
class Instance:
    cls: ClassValue
    attrs: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Compile:
    site: Site
    loss: LossValue | None
    """None: no loss given, or one lossaudit cannot tell (a custom function, a dict)."""
    loss_arg: ast.expr | None
    metrics: tuple[MetricValue, ...]
    metrics_arg: ast.expr | None
    complete: bool = True
    """False when ``**kwargs`` may hold the loss or metrics."""


@dataclass(eq=False)
class Check:
    """One compile of a model (or a model never compiled): what the rules judge."""

    model: Model
    output: Tensor | _Unknown
    compile: Compile | None
    labels: list[Labels] = field(default_factory=list)


@dataclass(eq=False)
class Model:
    site: Site
    output: Tensor | _Unknown
    packages: set[str]
    checks: list[Check] = field(default_factory=list)
    current: Check | None = None
    compile_unknown: bool = False
    own_training: bool = False
    """A subclass with its own train_step or compute_loss: the compiled loss may not be the one
    it trains with, so the compile is not judged."""

    def havoc(self) -> None:
        """Something lossaudit cannot follow changed the model."""
        self.output = UNKNOWN
        self.current = None

    def havoc_compile(self) -> None:
        self.compile_unknown = True
        self.current = None


@dataclass
class _Frame:
    returns: list[object] = field(default_factory=list)
    done: bool = False
    uncertain: bool = False


_MAIN_GUARD_NAMES = frozenset({"__name__"})
_LIST_MUTATORS = frozenset({"append", "extend", "insert", "pop", "remove", "clear", "sort", "reverse"})
_OWN_TRAINING = frozenset({"train_step", "compute_loss", "test_step"})
_MODEL_WORDS = frozenset(
    {"compile", "add", "fit", "evaluate", "Sequential", "Model", "Dense", "Input", "layers", "models"}
)
"""Names whose presence makes a function worth following when no straight-line code calls it."""
_BUILTINS = frozenset(
    {"len", "int", "float", "list", "tuple", "sorted", "print", "range", "super", "isinstance", "str"}
)


# --- the interpreter ---------------------------------------------------------------------------


class Interpreter:
    """Runs a file's code units in order on abstract values; see the module docstring."""

    def __init__(self, trees: Sequence[ast.Module], lines: Sequence[Sequence[str]] = ()) -> None:
        self.trees = trees
        self.lines = lines
        """Each unit's source lines (for a quick look at a function's text)."""
        self.module = Scope()
        self.models: list[Model] = []
        self.functions: list[Function] = []
        self.classes: list[ClassValue] = []
        self.called: set[ast.AST] = set()
        self.active: set[ast.AST] = set()
        self.depth = 0
        self.frames: list[Function] = []
        self.budget = BUDGET
        self.unit = 0
        self.stars: list[str] = []
        self.legacy_signals: list[tuple[str, int, int]] = []
        """(why, unit, line) of each sign that the code runs only under a legacy Keras."""
        self.imported: set[str] = set()
        """Qualified names of everything imported."""
        self._branches: dict[int, _BranchFacts] = {}
        self._relevant: dict[int, bool] = {}
        self._words: re.Pattern[str] | None = None

    # -- driving --

    def run(self) -> list[Check]:
        for index, tree in enumerate(self.trees):
            self.unit = index
            self._block(tree.body, self.module, None)
        self._finish()
        checks: list[Check] = []
        for model in self.models:
            checks.extend(model.checks)
            if not model.checks and isinstance(model.output, Tensor):
                checks.append(Check(model, model.output, None))
        return checks

    def _finish(self) -> None:
        """Functions no straight-line code called, with their defaults; model classes never made."""
        done: set[ast.AST] = set()
        progress = True
        while progress:
            progress = False
            for fn in list(self.functions):
                if fn.node in self.called or fn.node in done:
                    continue
                done.add(fn.node)
                if not self._may_build_models(fn):
                    continue
                progress = True
                self.unit = fn.unit
                self._call_function(fn, [], {}, star=False)
            for cls in list(self.classes):
                if cls.model_package is not None and not cls.instantiated:
                    self.unit = cls.unit
                    self._instantiate(cls, cls.node, [], {}, star=False)
                    progress = True

    def _may_build_models(self, fn: Function) -> bool:
        """Whether following a function no one called can find a model: its text names a Keras
        model method or constructor, or a function or class of this file (which may)."""
        key = id(fn.node)
        if key not in self._relevant:
            if self._words is None:
                local = {f.node.name for f in self.functions} | {c.node.name for c in self.classes}
                words = sorted(_MODEL_WORDS | local, key=len, reverse=True)
                self._words = re.compile(r"\b(?:" + "|".join(map(re.escape, words)) + r")\b")
            node = fn.node
            lines = self.lines[fn.unit] if fn.unit < len(self.lines) else ()
            body = lines[node.body[0].lineno - 1 : node.end_lineno] if lines and node.body else ()
            self._relevant[key] = not lines or bool(self._words.search("\n".join(body)))
        return self._relevant[key]

    def keras_prefix(self, namespace: str) -> str:
        """How this file spells ``keras.<namespace>.`` (``tf.keras.losses.``, ``losses.``, ...)."""
        roots: list[str] = []
        tensorflow: list[str] = []
        for name, value in self.module.vars.items():
            if not isinstance(value, Ref):
                continue
            keras = keras_name(value.name)
            if keras is not None and keras.parts == (namespace,):
                return f"{name}."
            if keras is not None and not keras.parts:
                roots.append(f"{name}.{namespace}.")
            elif value.name == "tensorflow":
                tensorflow.append(f"{name}.keras.{namespace}.")
        return (*roots, *tensorflow, f"keras.{namespace}.")[0]

    # -- statements --

    def _tick(self) -> None:
        self.budget -= 1
        if self.budget < 0:
            raise BudgetExceeded

    def _block(self, body: Sequence[ast.stmt], scope: Scope, frame: _Frame | None) -> None:
        for stmt in body:
            if frame is not None and frame.done:
                return
            self._stmt(stmt, scope, frame)

    def _stmt(self, node: ast.stmt, scope: Scope, frame: _Frame | None) -> None:
        self._tick()
        if isinstance(node, ast.Import | ast.ImportFrom):
            self._import(node, scope)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            scope.vars[node.name] = self._define(node, scope)
        elif isinstance(node, ast.ClassDef):
            scope.vars[node.name] = self._class(node, scope)
        elif isinstance(node, ast.Assign):
            value = self._expr(node.value, scope)
            for target in node.targets:
                self._bind(target, value, scope)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self._bind(node.target, self._expr(node.value, scope), scope)
        elif isinstance(node, ast.AugAssign):
            self._expr(node.value, scope)
            self._bind(node.target, UNKNOWN, scope)
        elif isinstance(node, ast.Expr):
            self._expr(node.value, scope)
        elif isinstance(node, ast.Return):
            if frame is not None:
                frame.returns.append(Const(None) if node.value is None else self._expr(node.value, scope))
                frame.done = True
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                self._expr(item.context_expr, scope)
                if item.optional_vars is not None:
                    self._bind(item.optional_vars, UNKNOWN, scope)
            self._block(node.body, scope, frame)
        elif isinstance(node, ast.If) and _is_main_guard(node.test):
            self._block(node.body, scope, frame)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            return
        elif isinstance(node, ast.Try) and _only_imports(node.body):
            self._block(node.body, scope, frame)
            for handler in node.handlers:  # the fallback imports: known too, never bound over
                for stmt in handler.body:
                    if isinstance(stmt, ast.Import | ast.ImportFrom):
                        self._import(stmt, Scope(scope))
        elif isinstance(node, ast.Delete):
            for target in node.targets:
                self._bind(target, UNKNOWN, scope)
        elif isinstance(node, ast.Global | ast.Nonlocal):
            # Assignments to these names are kept local here: the outer binding is unknown.
            outer = self.module if isinstance(node, ast.Global) else scope.parent
            for name in node.names:
                if outer is not None:
                    outer.vars[name] = UNKNOWN
        elif isinstance(
            node, ast.If | ast.For | ast.AsyncFor | ast.While | ast.Try | ast.TryStar | ast.Match
        ):
            self._branch(node, scope, frame)

    def _import(self, node: ast.Import | ast.ImportFrom, scope: Scope) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                self.imported.add(alias.name)
                if alias.asname:
                    scope.vars[alias.asname] = Ref(alias.name)
                else:
                    root = alias.name.split(".")[0]
                    scope.vars[root] = Ref(root)
            return
        if node.level or not node.module:
            for alias in node.names:
                scope.vars[alias.asname or alias.name] = UNKNOWN
            return
        for alias in node.names:
            qualified = f"{node.module}.{alias.name}"
            self.imported.add(qualified)
            if alias.name == "*":
                self.stars.append(node.module)
                continue
            scope.vars[alias.asname or alias.name] = Ref(qualified)

    def _define(self, node: ast.FunctionDef | ast.AsyncFunctionDef, scope: Scope) -> Function:
        args = node.args
        defaults = tuple(self._expr(d, scope) for d in args.defaults)
        kw_defaults = tuple(None if d is None else self._expr(d, scope) for d in args.kw_defaults)
        fn = Function(node, self.unit, scope, defaults, kw_defaults)
        self.functions.append(fn)
        return fn

    def _class(self, node: ast.ClassDef, scope: Scope) -> ClassValue:
        package: str | None = None
        methods: dict[str, Function] = {}
        bases: list[ClassValue] = []
        for base in node.bases:
            value = self._expr(base, scope)
            if isinstance(value, Ref):
                keras = keras_name(value.name)
                if keras is not None and keras.last in ("Model", "Sequential"):
                    package = keras.package
            elif isinstance(value, ClassValue) and value.model_package is not None:
                package = value.model_package
                methods.update(value.methods)  # inherited, overridden below
                bases.append(value)
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                fn = self._define(stmt, scope)
                methods[stmt.name] = fn
        cls = ClassValue(node, self.unit, methods, package, bases=tuple(bases))
        for stmt in node.body:
            if isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef):
                methods[stmt.name].owner = cls
        self.classes.append(cls)
        return cls

    def _branch(self, node: ast.stmt, scope: Scope, frame: _Frame | None) -> None:
        """A statement whose path lossaudit does not follow: what it assigns becomes unknown, the
        models it changes become unknown, and the labels its fit calls pass are still read."""
        facts = self._branches.get(id(node))
        if facts is None:
            facts = self._branches[id(node)] = _branch_facts(node)
        for name in facts.names:
            scope.vars[name] = UNKNOWN
        for target in facts.attributes:
            base = self._peek(target.value, scope)
            if isinstance(base, Instance):
                base.attrs[target.attr] = UNKNOWN
            elif isinstance(base, Model):
                base.havoc()
        for call in facts.calls:
            self._tick()
            func = call.func
            if isinstance(func, ast.Attribute):
                receiver = self._peek(func.value, scope)
                if isinstance(receiver, Model):
                    if func.attr in FIT_METHODS:
                        self._fit(receiver, call, scope)
                    elif func.attr == "compile":
                        receiver.havoc_compile()
                    elif func.attr not in READ_ONLY_MODEL_METHODS:
                        receiver.havoc()
                elif isinstance(func.value, ast.Name) and func.attr in _LIST_MUTATORS:
                    scope.vars[func.value.id] = UNKNOWN
            if not self._benign(call.func, scope):
                for arg in (*call.args, *(k.value for k in call.keywords)):
                    value = self._peek(arg, scope)
                    if isinstance(value, Model):
                        value.havoc()
        if frame is not None and facts.returns:
            frame.uncertain = True

    def _bind(self, target: ast.expr, value: object, scope: Scope) -> None:
        if isinstance(target, ast.Name):
            scope.vars[target.id] = value
        elif isinstance(target, ast.Tuple | ast.List):
            starred = any(isinstance(e, ast.Starred) for e in target.elts)
            if isinstance(value, Seq) and not starred and len(value.items) == len(target.elts):
                for element, item in zip(target.elts, value.items, strict=True):
                    self._bind(element, item, scope)
            else:
                for element in target.elts:
                    self._bind(element.value if isinstance(element, ast.Starred) else element, UNKNOWN, scope)
        elif isinstance(target, ast.Attribute):
            base = self._peek(target.value, scope)
            if isinstance(base, Instance):
                base.attrs[target.attr] = value
            else:
                root = self._peek(_root(target), scope)
                if isinstance(root, Model) and _touches_head(target):
                    root.havoc()
        elif isinstance(target, ast.Subscript):
            root_node = _root(target)
            root = self._peek(root_node, scope)
            if isinstance(root, Model):
                root.havoc()
            elif isinstance(root_node, ast.Name) and isinstance(root, Seq):
                scope.vars[root_node.id] = UNKNOWN

    # -- expressions --

    def _peek(self, node: ast.expr, scope: Scope) -> object:
        """A name or attribute chain's value, without evaluating any call."""
        if isinstance(node, ast.Name):
            return self._name(node.id, scope)
        if isinstance(node, ast.Attribute):
            base = self._peek(node.value, scope)
            return self._attribute(base, node.attr)
        return UNKNOWN

    def _name(self, name: str, scope: Scope) -> object:
        value = scope.lookup(name)
        if value is not None:
            return value
        for module in self.stars:
            candidate = f"{module}.{name}"
            keras = keras_name(candidate)
            if keras is not None and _known_keras_object(keras):
                return Ref(candidate)
        if name in _BUILTINS:
            return Ref(f"builtins.{name}")
        return UNKNOWN

    def _site(self, node: ast.expr) -> Site:
        return Site(self.unit, node)

    def _expr(self, node: ast.expr, scope: Scope) -> object:
        self._tick()
        if isinstance(node, ast.Constant):
            return Const(node.value)
        if isinstance(node, ast.Name):
            return self._name(node.id, scope)
        if isinstance(node, ast.Attribute):
            return self._attribute(self._expr(node.value, scope), node.attr)
        if isinstance(node, ast.Call):
            return self._call(node, scope)
        if isinstance(node, ast.List | ast.Tuple):
            if any(isinstance(e, ast.Starred) for e in node.elts):
                for e in node.elts:
                    self._expr(e.value if isinstance(e, ast.Starred) else e, scope)
                return UNKNOWN
            return Seq(tuple(self._expr(e, scope) for e in node.elts), tuple(node.elts))
        if isinstance(node, ast.Subscript):
            return self._subscript(node, scope)
        if isinstance(node, ast.BinOp):
            return _fold(self._expr(node.left, scope), node.op, self._expr(node.right, scope))
        if isinstance(node, ast.UnaryOp):
            operand = self._expr(node.operand, scope)
            if isinstance(operand, Const) and _is_number(operand.value):
                if isinstance(node.op, ast.USub):
                    return Const(-operand.value)  # type: ignore[operator]
                if isinstance(node.op, ast.UAdd):
                    return operand
            return UNKNOWN
        if isinstance(node, ast.IfExp):
            body, orelse = self._expr(node.body, scope), self._expr(node.orelse, scope)
            return body if body == orelse and not isinstance(body, Model) else UNKNOWN
        if isinstance(node, ast.NamedExpr):
            value = self._expr(node.value, scope)
            self._bind(node.target, value, scope)
            return value
        if isinstance(node, ast.Await):
            self._expr(node.value, scope)
            return UNKNOWN
        # Comprehensions, lambdas, f-strings, dicts, comparisons: unknown. Calls inside them may
        # change a model (a layer list built in a comprehension is not followed).
        for call in (n for n in ast.walk(node) if isinstance(n, ast.Call)):
            self._effects_of_unfollowed(call, scope)
        return UNKNOWN

    def _effects_of_unfollowed(self, call: ast.Call, scope: Scope) -> None:
        func = call.func
        if isinstance(func, ast.Attribute):
            receiver = self._peek(func.value, scope)
            if isinstance(receiver, Model) and func.attr not in READ_ONLY_MODEL_METHODS | FIT_METHODS:
                receiver.havoc()

    def _attribute(self, base: object, attr: str) -> object:
        if isinstance(base, Ref):
            return Ref(f"{base.name}.{attr}")
        if isinstance(base, Instance):
            if attr in base.attrs:
                return base.attrs[attr]
            method = base.cls.methods.get(attr)
            if method is None or method.node.decorator_list:
                return UNKNOWN  # static, class methods and properties are not followed
            return method.bind(base)
        if isinstance(base, Labels):
            if attr == "values":
                return base
            if attr == "shape":
                return Shape(base)
            return UNKNOWN
        if isinstance(base, Column) and attr == "values":
            return base
        if isinstance(base, Bunch) and attr == "target":
            return base.labels
        if isinstance(base, Model):
            if attr == "output" or attr == "outputs":
                return base.output
            if attr in ("input", "inputs"):
                return NOT_A_HEAD
        return UNKNOWN

    def _subscript(self, node: ast.Subscript, scope: Scope) -> object:
        base = self._expr(node.value, scope)
        index = node.slice
        if isinstance(base, OneHotTable):
            self._expr(index, scope)
            return Labels("one_hot", base.classes, f"numpy.eye({base.classes})[...]", self._site(node))
        if isinstance(base, Labels):
            if isinstance(index, ast.Tuple):
                return UNKNOWN
            self._expr(index, scope)
            return base
        value = self._expr(index, scope) if not isinstance(index, ast.Slice) else UNKNOWN
        if isinstance(base, Shape) and isinstance(value, Const) and value.value in (1, -1):
            if base.of.encoding in ("one_hot", "multi_hot") and base.of.classes is not None:
                return Const(base.of.classes)
            return UNKNOWN
        if isinstance(base, Seq) and isinstance(value, Const) and isinstance(value.value, int):
            position = value.value
            if -len(base.items) <= position < len(base.items) and not isinstance(position, bool):
                return base.items[position]
            return UNKNOWN
        if isinstance(base, Bunch) and value == Const("target"):
            return base.labels
        if base is UNKNOWN and (
            (isinstance(value, Const) and isinstance(value.value, str))
            or (isinstance(value, Seq) and len(value.items) == 1 and isinstance(value.items[0], Const))
        ):
            return Column()
        return UNKNOWN

    # -- calls --

    def _super_method(self, func: ast.Attribute) -> Function | None:
        """``super().name`` in a method of a model class: the base class's method, bound."""
        value = func.value
        if not (
            isinstance(value, ast.Call)
            and isinstance(value.func, ast.Name)
            and value.func.id == "super"
            and not value.args
            and self.frames
        ):
            return None
        current = self.frames[-1]
        if current.owner is None or current.bound is None:
            return None
        for base in current.owner.bases:
            method = base.methods.get(func.attr)
            if method is not None and not method.node.decorator_list:
                return method.bind(current.bound)
        return None

    def _call(self, node: ast.Call, scope: Scope) -> object:
        func = node.func
        if isinstance(func, ast.Attribute) and (inherited := self._super_method(func)) is not None:
            args, kwargs, star = self._arguments(node, scope)
            return self._call_function(inherited, args, kwargs, star=star)
        if isinstance(func, ast.Attribute):
            receiver = self._expr(func.value, scope)
            method = func.attr
            if isinstance(receiver, Model):
                return self._model_method(receiver, method, node, scope)
            if isinstance(receiver, Labels):
                return self._labels_method(receiver, method, node, scope)
            if isinstance(receiver, Encoder):
                return self._encoder_method(receiver, method, node, scope)
            if isinstance(receiver, Column) and method in ("to_numpy", "astype", "copy"):
                return receiver
            if (
                isinstance(receiver, Seq)
                and method in ("append", "extend")
                and isinstance(func.value, ast.Name)
            ):
                args = [self._expr(a, scope) for a in node.args]
                if method == "append" and len(args) == 1:
                    scope.vars[func.value.id] = Seq((*receiver.items, args[0]))
                elif method == "extend" and len(args) == 1 and isinstance(args[0], Seq):
                    scope.vars[func.value.id] = Seq((*receiver.items, *args[0].items))
                else:
                    scope.vars[func.value.id] = UNKNOWN
                return Const(None)
            if isinstance(func.value, ast.Name) and isinstance(receiver, Seq) and method in _LIST_MUTATORS:
                scope.vars[func.value.id] = UNKNOWN
            if receiver is UNKNOWN and method == "pop" and len(node.args) == 1:
                key = self._expr(node.args[0], scope)
                if isinstance(key, Const) and isinstance(key.value, str):
                    return Column()  # df.pop("label")
            callee = self._attribute(receiver, method)
        else:
            callee = self._expr(func, scope)
        return self._apply(callee, node, scope)

    def _arguments(self, node: ast.Call, scope: Scope) -> tuple[list[object], dict[str, object], bool]:
        args: list[object] = []
        star = False
        for a in node.args:
            if isinstance(a, ast.Starred):
                self._expr(a.value, scope)
                star = True
            else:
                args.append(self._expr(a, scope))
        kwargs: dict[str, object] = {}
        for k in node.keywords:
            value = self._expr(k.value, scope)
            if k.arg is None:
                star = True
            else:
                kwargs[k.arg] = value
        return args, kwargs, star

    def _apply(self, callee: object, node: ast.Call, scope: Scope) -> object:
        args, kwargs, star = self._arguments(node, scope)
        if isinstance(callee, Ref):
            return self._call_ref(callee.name, node, args, kwargs, star)
        if isinstance(callee, Function):
            return self._call_function(callee, args, kwargs, star=star)
        if isinstance(callee, ClassValue):
            return self._instantiate(callee, node, args, kwargs, star=star)
        if isinstance(callee, Layer):
            return self._apply_layer(callee, args[0]) if len(args) == 1 and not kwargs else UNKNOWN
        if isinstance(callee, Model):
            return _model_as_layer(callee, args[0]) if args else UNKNOWN
        if isinstance(callee, Activation):
            return self._activate(callee.name, node, args, "function")
        self._havoc_arguments(args, kwargs)
        return UNKNOWN

    def _havoc_arguments(self, args: list[object], kwargs: dict[str, object]) -> None:
        for value in (*args, *kwargs.values()):
            if isinstance(value, Model):
                value.havoc()

    def _benign(self, func: ast.expr, scope: Scope) -> bool:
        value = self._peek(func, scope)
        if isinstance(value, Ref):
            keras = keras_name(value.name)
            if keras is not None:
                return keras.last in BENIGN_KERAS
            return value.name.startswith(BENIGN_PREFIXES)
        return isinstance(func, ast.Attribute) and func.attr in ("info", "debug", "warning", "log", "print")

    def _call_ref(
        self, name: str, node: ast.Call, args: list[object], kwargs: dict[str, object], star: bool
    ) -> object:
        keras = keras_name(name)
        if keras is not None:
            self._keras1_arguments(node)
            return self._call_keras(keras, node, args, kwargs, star)
        tf = tensorflow_name(name)
        if tf is not None:
            last = tf.split(".")[-1]
            if last in ("disable_eager_execution", "disable_v2_behavior"):
                self.legacy_signals.append((f"TF1 graph mode ({last})", self.unit, node.lineno))
                return Const(None)
            if tf in ("one_hot", "nn.one_hot"):
                return self._one_hot(args, kwargs, "depth", f"tf.{tf}", node)
            activation = activation_of_name(name)
            if activation is not None:
                return self._activate(activation, node, args, "function")
            self._havoc_arguments(args, kwargs)
            return UNKNOWN
        if name.startswith("numpy."):
            return self._call_numpy(name[len("numpy.") :], node, args, kwargs)
        if name in ("pandas.get_dummies",) and args and not star:
            if isinstance(args[0], Column) or (
                isinstance(args[0], Labels) and args[0].encoding in ("index", "binary")
            ):
                return Labels("one_hot", None, "pandas.get_dummies", self._site(node))
            return UNKNOWN
        if name.startswith("sklearn."):
            return self._call_sklearn(name.split(".")[-1], node, args, kwargs, star)
        if name.startswith("builtins."):
            return _call_builtin(name[len("builtins.") :], args)
        if not name.startswith(BENIGN_PREFIXES):
            self._havoc_arguments(args, kwargs)
        return UNKNOWN

    def _keras1_arguments(self, node: ast.Call) -> None:
        for keyword in node.keywords:
            if keyword.arg in KERAS1_ARGUMENTS:
                why = f"Keras 1 argument {keyword.arg}="
                self.legacy_signals.append((why, self.unit, node.lineno))
                return

    def _call_keras(
        self, keras: KerasName, node: ast.Call, args: list[object], kwargs: dict[str, object], star: bool
    ) -> object:
        last = keras.last
        site = self._site(node)
        if last == "Sequential" and not keras.within("layers"):
            model = Model(site, NOT_A_HEAD, {keras.package})
            self.models.append(model)
            layers = args[0] if args else kwargs.get("layers")
            if star:
                model.output = UNKNOWN
            elif isinstance(layers, Seq):
                for layer in layers.items:
                    model.output = self._add(model.output, layer, model)
            elif layers is not None and layers != Const(None):
                model.output = UNKNOWN
            return model
        if last == "Model" and not keras.within("layers"):
            outputs = kwargs.get("outputs", args[1] if len(args) > 1 else None)
            if isinstance(outputs, Seq) and len(outputs.items) == 1:
                outputs = outputs.items[0]
            output: Tensor | _Unknown = outputs if isinstance(outputs, Tensor) and not star else UNKNOWN
            model = Model(site, output, {keras.package})
            self.models.append(model)
            return model
        if last == "Input" and not keras.within("losses"):
            return Tensor(None, None, None, (), keras.package)
        if keras.within("layers"):
            return self._layer(keras, node, args, kwargs, star)
        if keras.within("losses"):
            return self._loss_object(last, node, args, kwargs, star)
        if keras.within("metrics"):
            if last[:1].isupper():
                changes = bool(args) or star or any(k not in ("name", "dtype") for k in kwargs)
                return MetricValue(normalise_metric_name(last), site, judged=not changes)
            return UNKNOWN
        if keras.within("activations") and last == "get" and args:
            name = _activation_name(args[0])
            return Activation(name) if name is not None else UNKNOWN
        activation = activation_of_name(".".join(("keras", *keras.parts)))
        if activation is not None:
            return self._activate(activation, node, args, "function")
        if last == "to_categorical":
            return self._to_categorical(node, args, kwargs)
        if last == "one_hot" and keras.within("ops"):
            return self._one_hot(args, kwargs, "num_classes", "keras.ops.one_hot", node)
        if last == "load_data" and keras.within("datasets") and len(keras.parts) >= 2:
            return self._keras_dataset(keras.parts[-2], node, kwargs)
        if last not in BENIGN_KERAS:
            self._havoc_arguments(args, kwargs)
        return UNKNOWN

    def _layer(
        self,
        keras: KerasName,
        node: ast.Call,
        args: list[object],
        kwargs: dict[str, object],
        star: bool = False,
    ) -> Layer:
        last = keras.last
        site = self._site(node)
        package = keras.package
        if star:
            return Layer("opaque", site, package)
        if last == "Dense":
            units_value = args[0] if args else kwargs.get("units", kwargs.get("output_dim"))
            units_arg = node.args[0] if node.args else _keyword(node, "units", "output_dim")
            units = units_value.value if isinstance(units_value, Const) else None
            if not isinstance(units, int) or isinstance(units, bool):
                units = None
            activation: str | None
            activation_arg: ast.expr | None
            if "activation" in kwargs:
                activation = _activation_name(kwargs["activation"])
                activation_arg = _keyword(node, "activation")
            elif len(args) >= 2:
                # Keras 2 and 3: Dense(units, activation); Keras 1: Dense(output_dim, init). Only a
                # name Keras knows as an activation is read as one.
                activation = _activation_name(args[1])
                if isinstance(args[1], Const) and activation not in ACTIVATIONS:
                    activation = None
                activation_arg = node.args[1]
            else:
                activation, activation_arg = "linear", None
            return Layer("dense", site, package, units, units_arg, activation, activation_arg)
        if last == "Activation":
            value = args[0] if args else kwargs.get("activation")
            arg = node.args[0] if node.args else _keyword(node, "activation")
            return Layer("activation", site, package, activation=_activation_name(value), activation_arg=arg)
        if last in ACTIVATION_LAYERS:
            axis = kwargs.get("axis")
            known = axis is None or axis in (Const(-1),)
            return Layer("activation", site, package, activation=ACTIVATION_LAYERS[last] if known else None)
        if last in PASSTHROUGH_LAYERS:
            return Layer("passthrough", site, package)
        if last in NORMALIZATION_LAYERS:
            return Layer("normalization", site, package)
        if last in OPAQUE_LAYERS:
            return Layer("opaque", site, package)
        return Layer("other", site, package)

    def _apply_layer(self, layer: Layer, tensor: object) -> object:
        if layer.kind == "dense":
            if layer.units is None or layer.activation is None:
                return UNKNOWN
            step = Step(layer.activation, layer.site, layer.activation_arg, "dense")
            return Tensor(layer.units, layer.site, layer.units_arg, (step,), layer.package)
        if layer.kind == "other":
            return Tensor(None, None, None, (), layer.package)
        if not isinstance(tensor, Tensor) or layer.kind == "opaque":
            return UNKNOWN
        if layer.kind == "activation":
            if tensor.units is None:
                return tensor
            if layer.activation is None:
                return UNKNOWN
            step = Step(layer.activation, layer.site, layer.activation_arg, "layer")
            return Tensor(tensor.units, tensor.dense, tensor.units_arg, (*tensor.chain, step), tensor.package)
        if layer.kind == "normalization" and any(s.name != "linear" for s in tensor.chain):
            return UNKNOWN
        return tensor

    def _add(self, output: Tensor | _Unknown, layer: object, model: Model) -> Tensor | _Unknown:
        """``model.add(layer)`` / one element of ``Sequential([...])``."""
        if isinstance(layer, Layer):
            if layer.package is not None:
                model.packages.add(layer.package)
            result = self._apply_layer(layer, output)
        elif isinstance(layer, Model):
            result = _model_as_layer(layer, output)
            model.packages |= layer.packages
        elif isinstance(layer, Tensor):  # keras.Input(...) as the first element
            result = NOT_A_HEAD
        else:
            result = UNKNOWN
        return result if isinstance(result, Tensor) else UNKNOWN

    def _activate(self, name: str, node: ast.Call, args: list[object], kind: str) -> object:
        """An activation function applied to a tensor (``tf.nn.softmax(x)``)."""
        if len(args) != 1 or not isinstance(args[0], Tensor):
            return UNKNOWN
        tensor = args[0]
        if tensor.units is None:
            return tensor
        step = Step(name, self._site(node), node.func, kind)
        return Tensor(tensor.units, tensor.dense, tensor.units_arg, (*tensor.chain, step), tensor.package)

    def _loss_object(
        self, last: str, node: ast.Call, args: list[object], kwargs: dict[str, object], star: bool
    ) -> object:
        if not last[:1].isupper() or star:
            return UNKNOWN
        names = ["from_logits", "label_smoothing"] if last in LOSS_CLASSES_WITH_LOGITS_FIRST else []
        if len(args) > len(names):
            return UNKNOWN
        given = dict(zip(names, args, strict=False))
        given.update(kwargs)
        from_logits = given.get("from_logits", Const(False))
        smoothing = given.get("label_smoothing", Const(0.0))
        if not isinstance(from_logits, Const) or not isinstance(from_logits.value, bool):
            return UNKNOWN
        if not isinstance(smoothing, Const) or not _is_number(smoothing.value):
            return UNKNOWN
        return LossValue(last, from_logits.value, float(smoothing.value), self._site(node), "object")  # type: ignore[arg-type]

    def _to_categorical(self, node: ast.Call, args: list[object], kwargs: dict[str, object]) -> object:
        count = kwargs.get("num_classes", args[1] if len(args) > 1 else None)
        classes: int | None = None
        if isinstance(count, Const) and isinstance(count.value, int) and not isinstance(count.value, bool):
            classes = count.value
        elif count is None or count == Const(None):
            source = args[0] if args else kwargs.get("y")
            if isinstance(source, Labels) and source.encoding in ("index", "binary"):
                classes = source.classes
        else:
            return Labels("one_hot", None, "keras.utils.to_categorical", self._site(node))
        return Labels("one_hot", classes, "keras.utils.to_categorical", self._site(node))

    def _one_hot(
        self, args: list[object], kwargs: dict[str, object], depth: str, origin: str, node: ast.Call
    ) -> object:
        count = kwargs.get(depth, args[1] if len(args) > 1 else None)
        classes = count.value if isinstance(count, Const) and isinstance(count.value, int) else None
        if isinstance(classes, bool):
            classes = None
        return Labels("one_hot", classes, origin, self._site(node))

    def _keras_dataset(self, name: str, node: ast.Call, kwargs: dict[str, object]) -> object:
        known = KERAS_DATASETS.get(name)
        if known is None:
            return UNKNOWN
        encoding, classes, column = known
        if name == "cifar100":
            mode = kwargs.get("label_mode", Const("fine"))
            if mode == Const("coarse"):
                classes = 20
            elif mode != Const("fine"):
                return UNKNOWN
        origin = f"keras.datasets.{name}.load_data() (labels 0..{classes - 1})"
        labels = Labels(encoding, classes, origin, self._site(node), column)
        return Seq((Seq((UNKNOWN, labels)), Seq((UNKNOWN, labels))))

    def _call_numpy(self, name: str, node: ast.Call, args: list[object], kwargs: dict[str, object]) -> object:
        if name in ("eye", "identity") and args:
            count = args[0]
            if _is_int(count) and len(args) == 1 and set(kwargs) <= {"dtype"}:
                assert isinstance(count, Const) and isinstance(count.value, int)
                return OneHotTable(count.value)
            return UNKNOWN
        if name == "argmax" and args:
            axis = kwargs.get("axis", args[1] if len(args) > 1 else None)
            source = args[0]
            if isinstance(source, Labels) and source.encoding == "one_hot" and axis in (Const(1), Const(-1)):
                return Labels("index", source.classes, "numpy.argmax of one-hot labels", self._site(node))
            return UNKNOWN
        if name in ("asarray", "array", "ascontiguousarray", "copy") and args and isinstance(args[0], Labels):
            return args[0]
        if name in ("squeeze", "ravel") and args and isinstance(args[0], Labels):
            return args[0] if args[0].encoding in ("index", "binary") else UNKNOWN
        return UNKNOWN

    def _call_sklearn(
        self, name: str, node: ast.Call, args: list[object], kwargs: dict[str, object], star: bool
    ) -> object:
        site = self._site(node)
        encoders = {
            "LabelEncoder": "label",
            "OneHotEncoder": "onehot",
            "LabelBinarizer": "binarizer",
            "MultiLabelBinarizer": "multilabel",
        }
        if name in encoders:
            return Encoder(encoders[name])
        if name == "train_test_split" and not star:
            out: list[object] = []
            for value in args:
                kept = value if isinstance(value, Labels) else UNKNOWN
                out.extend((kept, kept))
            return Seq(tuple(out))
        if name in SKLEARN_LOADERS:
            encoding, classes = SKLEARN_LOADERS[name]
            if name == "load_digits" and "n_class" in kwargs:
                n_class = kwargs["n_class"]
                if not isinstance(n_class, Const) or not isinstance(n_class.value, int):
                    return UNKNOWN
                classes = n_class.value
            labels = Labels(encoding, classes, f"sklearn.datasets.{name}() (labels 0..{classes - 1})", site)
            if kwargs.get("return_X_y") == Const(True):
                return Seq((UNKNOWN, labels))
            return Bunch(labels)
        if name in ("make_classification", "make_blobs", "make_moons", "make_circles"):
            classes_value: object = Const(2)
            if name == "make_classification":
                classes_value = kwargs.get("n_classes", Const(2))
            elif name == "make_blobs":
                classes_value = kwargs.get("centers", Const(3) if len(args) < 3 else args[2])
            if not isinstance(classes_value, Const) or not isinstance(classes_value.value, int):
                return Seq((UNKNOWN, UNKNOWN))
            k = classes_value.value
            encoding = "binary" if k == 2 else "index"
            labels = Labels(encoding, k, f"sklearn.datasets.{name}() (labels 0..{k - 1})", site)
            return Seq((UNKNOWN, labels))
        if name == "make_multilabel_classification":
            return Seq(
                (
                    UNKNOWN,
                    Labels("multi_hot", None, "sklearn.datasets.make_multilabel_classification()", site),
                )
            )
        return UNKNOWN

    def _labels_method(self, labels: Labels, method: str, node: ast.Call, scope: Scope) -> object:
        args, kwargs, _ = self._arguments(node, scope)
        if method in ("astype", "copy", "to_numpy", "numpy"):
            return labels
        if method in ("reshape", "ravel", "flatten", "squeeze"):
            return labels if labels.encoding in ("index", "binary") else UNKNOWN
        if method == "argmax" and labels.encoding == "one_hot":
            axis = kwargs.get("axis", args[0] if args else None)
            if axis in (Const(1), Const(-1)):
                return Labels("index", labels.classes, "argmax of one-hot labels", self._site(node))
        return UNKNOWN

    def _encoder_method(self, encoder: Encoder, method: str, node: ast.Call, scope: Scope) -> object:
        args, _, _ = self._arguments(node, scope)
        if method == "fit":
            return encoder
        if method not in ("fit_transform", "transform") or not args:
            return UNKNOWN
        site = self._site(node)
        if encoder.kind == "label":
            return Labels("index", None, "sklearn LabelEncoder", site)
        if encoder.kind == "multilabel":
            return Labels("multi_hot", None, "sklearn MultiLabelBinarizer (multi-label)", site)
        if encoder.kind == "onehot" and (
            isinstance(args[0], Column)
            or (isinstance(args[0], Labels) and args[0].encoding in ("index", "binary"))
            or _is_single_column(node.args[0])
        ):
            return Labels("one_hot", None, "sklearn OneHotEncoder", site)
        return UNKNOWN  # LabelBinarizer: one-hot, or one 0/1 column for two classes

    # -- models --

    def _model_method(self, model: Model, method: str, node: ast.Call, scope: Scope) -> object:
        self._keras1_arguments(node)
        if method == "add":
            args, _, star = self._arguments(node, scope)
            if len(args) == 1 and not star:
                model.output = self._add(model.output, args[0], model)
            else:
                model.output = UNKNOWN
            return Const(None)
        if method == "compile":
            self._compile(model, node, scope)
            return Const(None)
        if method in FIT_METHODS:
            self._fit(model, node, scope)
            return UNKNOWN
        self._arguments(node, scope)
        if method not in READ_ONLY_MODEL_METHODS:
            model.havoc()
        return UNKNOWN

    def _compile(self, model: Model, node: ast.Call, scope: Scope) -> None:
        args, kwargs, star = self._arguments(node, scope)
        site = self._site(node)
        loss_arg = _keyword(node, "loss") or (node.args[1] if len(node.args) > 1 else None)
        loss_value = kwargs.get("loss", args[1] if len(args) > 1 else None)
        loss = _loss(loss_value, loss_arg, self.unit) if loss_arg is not None else None
        metrics_arg = _keyword(node, "metrics")
        metrics = _metrics(kwargs.get("metrics"), metrics_arg, self.unit) if metrics_arg is not None else ()
        if model.own_training:
            loss, metrics = None, ()
        compile_ = Compile(site, loss, loss_arg, metrics, metrics_arg, complete=not star and len(args) <= 2)
        model.compile_unknown = False
        check = Check(model, model.output, compile_)
        model.checks.append(check)
        model.current = check

    def _fit(self, model: Model, node: ast.Call, scope: Scope) -> None:
        y_node = _keyword(node, "y") or (node.args[1] if len(node.args) > 1 else None)
        values: list[object] = []
        if y_node is not None:
            values.append(self._expr(y_node, scope))
        validation = _keyword(node, "validation_data")
        if validation is not None:
            data = self._expr(validation, scope)
            if isinstance(data, Seq) and len(data.items) >= 2:
                values.append(data.items[1])
        check = model.current
        if check is None:
            return
        for value in values:
            if isinstance(value, Labels):
                check.labels.append(value)

    def _instantiate(
        self, cls: ClassValue, node: ast.AST, args: list[object], kwargs: dict[str, object], *, star: bool
    ) -> object:
        cls.instantiated = True
        if cls.model_package is None:
            self._havoc_arguments(args, kwargs)
            return UNKNOWN
        instance = Instance(cls)
        init = cls.methods.get("__init__")
        if init is not None:
            self._call_function(init.bind(instance), args, kwargs, star=star)
        output: Tensor | _Unknown = UNKNOWN
        call = cls.methods.get("call")
        if call is not None:
            result = self._call_function(
                call.bind(instance), [Tensor(None, None, None, (), cls.model_package)], {}, star=False
            )
            if isinstance(result, Tensor):
                output = result
        model = Model(Site(self.unit, node), output, {cls.model_package})
        model.own_training = bool(_OWN_TRAINING & set(cls.methods))
        self.models.append(model)
        return model

    def _call_function(
        self, fn: Function, args: list[object], kwargs: dict[str, object], *, star: bool
    ) -> object:
        node = fn.node
        self.called.add(node)
        if self.depth >= MAX_DEPTH or node in self.active:
            self._havoc_arguments(args, kwargs)
            return UNKNOWN
        scope = Scope(fn.scope)
        spec = node.args
        params = [*spec.posonlyargs, *spec.args]
        given = [fn.bound, *args] if fn.bound is not None else list(args)
        remaining = dict(kwargs)
        first_default = len(params) - len(fn.defaults)
        for i, param in enumerate(params):
            if i < len(given):
                value = given[i]
            elif param.arg in remaining:
                value = remaining.pop(param.arg)
            elif i >= first_default and not star:
                value = fn.defaults[i - first_default]
            else:
                value = UNKNOWN
            scope.vars[param.arg] = value
        for param, default in zip(spec.kwonlyargs, fn.kw_defaults, strict=True):
            if param.arg in remaining:
                scope.vars[param.arg] = remaining.pop(param.arg)
            else:
                scope.vars[param.arg] = default if default is not None and not star else UNKNOWN
        if spec.vararg is not None:
            scope.vars[spec.vararg.arg] = Seq(tuple(given[len(params) :])) if not star else UNKNOWN
        if spec.kwarg is not None:
            scope.vars[spec.kwarg.arg] = UNKNOWN
        frame = _Frame()
        unit = self.unit
        self.depth += 1
        self.active.add(node)
        self.frames.append(fn)
        self.unit = fn.unit
        try:
            self._block(node.body, scope, frame)
        finally:
            self.depth -= 1
            self.active.discard(node)
            self.frames.pop()
            self.unit = unit
        if frame.uncertain or len(frame.returns) > 1:
            return UNKNOWN
        return frame.returns[0] if frame.returns else Const(None)


# --- helpers -----------------------------------------------------------------------------------


def _model_as_layer(model: Model, tensor: object) -> object:
    """A model used as a layer: its head, when it has one of its own."""
    if isinstance(model.output, Tensor) and model.output.units is not None:
        return model.output
    if isinstance(model.output, Tensor) and not model.output.chain:
        return Tensor(None, None, None, (), model.output.package)
    return UNKNOWN


def _activation_name(value: object) -> str | None:
    """The canonical activation a value names; None when it is not one lossaudit can tell."""
    if isinstance(value, Const):
        if value.value is None:
            return "linear"
        if isinstance(value.value, str):
            return normalise_activation(value.value)
        return None
    if isinstance(value, Activation):
        return value.name
    if isinstance(value, Layer) and value.kind == "activation":
        return value.activation
    if isinstance(value, Ref):
        return activation_of_name(value.name)
    return None


def _loss(value: object, node: ast.expr, unit: int) -> LossValue | None:
    site = Site(unit, node)
    if isinstance(value, Const) and isinstance(value.value, str):
        return LossValue(value.value, False, 0.0, site, "string")
    if isinstance(value, LossValue):
        return LossValue(value.name, value.from_logits, value.label_smoothing, site, value.form)
    if isinstance(value, Ref):
        keras = keras_name(value.name)
        if keras is not None and keras.within("losses") and keras.last[:1].islower():
            return LossValue(keras.last, False, 0.0, site, "function")
    return None


def _metrics(value: object, node: ast.expr, unit: int) -> tuple[MetricValue, ...]:
    if isinstance(value, Const) and isinstance(value.value, str):
        return (MetricValue(value.value, Site(unit, node)),)
    if not isinstance(value, Seq):
        return ()
    out: list[MetricValue] = []
    nodes = value.nodes if len(value.nodes) == len(value.items) else (None,) * len(value.items)
    for item, item_node in zip(value.items, nodes, strict=True):
        site = Site(unit, item_node if item_node is not None else node)
        if isinstance(item, Const) and isinstance(item.value, str):
            out.append(MetricValue(item.value, site))
        elif isinstance(item, MetricValue):
            out.append(MetricValue(item.name, site, item.judged))
        elif isinstance(item, Ref):
            keras = keras_name(item.name)
            if keras is not None and keras.within("metrics") and keras.last[:1].islower():
                out.append(MetricValue(keras.last, site))
    return tuple(out)


def _call_builtin(name: str, args: list[object]) -> object:
    if len(args) != 1:
        return UNKNOWN
    value = args[0]
    if name == "len" and isinstance(value, Seq):
        return Const(len(value.items))
    if name == "len" and isinstance(value, Const) and isinstance(value.value, str | tuple):
        return Const(len(value.value))
    if name in ("int", "float") and isinstance(value, Const) and _is_number(value.value):
        number = value.value
        assert isinstance(number, int | float)
        return Const(int(number) if name == "int" else float(number))
    if name in ("list", "tuple", "sorted") and isinstance(value, Seq):
        return Seq(value.items)
    return UNKNOWN


def _is_int(value: object) -> bool:
    """A known integer (not a bool)."""
    return isinstance(value, Const) and isinstance(value.value, int) and not isinstance(value.value, bool)


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _fold(left: object, op: ast.operator, right: object) -> object:
    if not (isinstance(left, Const) and isinstance(right, Const)):
        return UNKNOWN
    a, b = left.value, right.value
    if not (_is_number(a) and _is_number(b)):
        return UNKNOWN
    x, y = float(a), float(b)  # type: ignore[arg-type]
    integral = isinstance(a, int) and isinstance(b, int)
    try:
        if isinstance(op, ast.Add):
            result = x + y
        elif isinstance(op, ast.Sub):
            result = x - y
        elif isinstance(op, ast.Mult):
            result = x * y
        elif isinstance(op, ast.FloorDiv):
            result = x // y
        elif isinstance(op, ast.Div):
            return Const(x / y)
        elif isinstance(op, ast.Pow) and abs(y) <= 64 and abs(x) <= 1e6:
            result = x**y
        else:
            return UNKNOWN
    except (ZeroDivisionError, OverflowError):
        return UNKNOWN
    if integral and result.is_integer() and abs(result) < 2**53:
        return Const(int(result))
    return Const(result) if not integral else UNKNOWN


def _keyword(node: ast.Call, *names: str) -> ast.expr | None:
    for keyword in node.keywords:
        if keyword.arg in names:
            return keyword.value
    return None


def _root(node: ast.expr) -> ast.expr:
    while isinstance(node, ast.Attribute | ast.Subscript):
        node = node.value
    return node


def _touches_head(target: ast.Attribute) -> bool:
    """An assignment like ``model.layers[-1].activation = ...`` changes the head."""
    node: ast.expr = target
    while isinstance(node, ast.Attribute | ast.Subscript):
        if isinstance(node, ast.Attribute) and node.attr in ("layers", "activation", "outputs", "output"):
            return True
        node = node.value
    return False


def _is_single_column(node: ast.expr) -> bool:
    """``y.reshape(-1, 1)``, ``y[:, None]``, ``df[["label"]]``: one column for an encoder."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "reshape":
        dims = [a.value if isinstance(a, ast.Constant) else a for a in node.args]
        if len(node.args) == 1 and isinstance(node.args[0], ast.Tuple):
            dims = [e.value if isinstance(e, ast.Constant) else e for e in node.args[0].elts]
        return len(dims) == 2 and dims[1] == 1
    if isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Tuple) and len(node.slice.elts) == 2:
        second = node.slice.elts[1]
        is_none = isinstance(second, ast.Constant) and second.value is None
        is_newaxis = isinstance(second, ast.Attribute) and second.attr == "newaxis"
        return isinstance(node.slice.elts[0], ast.Slice) and (is_none or is_newaxis)
    return False


def _known_keras_object(keras: KerasName) -> bool:
    """Whether ``from keras.layers import *`` makes this name one lossaudit follows."""
    last = keras.last
    if last in ("Dense", "Activation", "Sequential", "Model", "Input", "to_categorical"):
        return True
    return last in ACTIVATION_LAYERS or last in PASSTHROUGH_LAYERS or last in NORMALIZATION_LAYERS


def _is_main_guard(test: ast.expr) -> bool:
    return (
        isinstance(test, ast.Compare)
        and isinstance(test.left, ast.Name)
        and test.left.id in _MAIN_GUARD_NAMES
        and len(test.comparators) == 1
        and isinstance(test.comparators[0], ast.Constant)
        and test.comparators[0].value == "__main__"
        and isinstance(test.ops[0], ast.Eq)
    )


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _only_imports(body: Sequence[ast.stmt]) -> bool:
    return bool(body) and all(isinstance(s, ast.Import | ast.ImportFrom | ast.Pass) for s in body)


@dataclass(frozen=True)
class _BranchFacts:
    names: frozenset[str]
    """Names the statement may bind."""
    attributes: tuple[ast.Attribute, ...]
    """Attribute targets it may assign (``self.x = ...``)."""
    calls: tuple[ast.Call, ...]
    returns: bool


_SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda)


def _branch_facts(node: ast.AST) -> _BranchFacts:
    """One walk over a statement, not into nested functions, classes and lambdas."""
    names: set[str] = set()
    attributes: list[ast.Attribute] = []
    calls: list[ast.Call] = []
    returns = False
    stack = [node]
    while stack:
        current = stack.pop()
        for child in ast.iter_child_nodes(current):
            if isinstance(child, ast.Name):
                if not isinstance(child.ctx, ast.Load):
                    names.add(child.id)
                continue
            if isinstance(child, ast.Call):
                calls.append(child)
            elif isinstance(child, ast.Attribute) and isinstance(child.ctx, ast.Store):
                attributes.append(child)
            elif isinstance(child, ast.Return):
                returns = True
            elif isinstance(child, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in child.names)
            elif isinstance(child, ast.ExceptHandler | ast.MatchAs | ast.MatchStar) and child.name:
                names.add(child.name)
            elif isinstance(child, ast.MatchMapping) and child.rest:
                names.add(child.rest)
            if isinstance(child, _SCOPES):
                if not isinstance(child, ast.Lambda):
                    names.add(child.name)
                continue
            stack.append(child)
    calls.reverse()
    return _BranchFacts(frozenset(names), tuple(attributes), tuple(calls), returns)
