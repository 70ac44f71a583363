"""viz: pictures of what labgrad does inside.

>>> import viz
>>> viz.draw(loss)                     # the graph that computed loss
>>> viz.draw(loss, backward=True)      # what loss.backward() will run
>>> viz.BackpropStepper(loss)          # step through forward and backward, op by op
>>> viz.draw(f)                        # a static graph: lg.compile(...), lg.jit function, Graph
>>> viz.compare(f, x_pos, x_neg, static_fn=f_cond)   # eager graphs vs the one static graph
>>> viz.PassExplorer(f)                 # what each graph pass did: before and after, marked
>>> viz.draw_schedule(f)                # the order nodes run in: live memory per step, by device

Drawings are built as DOT text and rendered to SVG by ``graphviz-pure`` (see ``viz.render``).
viz reads labgrad's public objects; labgrad never imports viz.
"""
from .draw import DrawOptions, GraphView, draw, register_drawer  # noqa: F401
from .render import RendererNotFoundError, RenderError, render_svg, set_renderer  # noqa: F401
from . import eager  # noqa: F401  (registers the drawer for lg.Tensor)
from . import static  # noqa: F401  (registers drawers for Graph, Executable, jit functions, Symbol)
from .compare import compare  # noqa: F401
from .stepper import BackpropStepper  # noqa: F401
from .passes import PassExplorer  # noqa: F401
from . import feedback  # noqa: F401  (exercises' visible checks: viz.feedback.check)
from .monitor import TrainingMonitor  # noqa: F401  (live curves during Trainer.fit)
from .onnx_view import draw_onnx  # noqa: F401  (an exported ONNX model: viz.draw_onnx("model.onnx"))
from .profile_view import ProfileView  # noqa: F401
from .schedule import draw_schedule  # noqa: F401  (a node order's live memory, by device)
