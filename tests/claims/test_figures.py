"""Every figure a notebook draws lands in the executed notebook (so in build/notebooks and build/html too), and
every solution cell prints its check's success line.

With `MPLBACKEND=Agg` in a kernel's environment `plt.show()` stores nothing; this counts the matplotlib figures each
notebook creates against the images its executed copy holds (cell outputs plus widget output areas).
"""
import pytest

from saelab.course import NOTEBOOKS
from tests.claims.harness import notebook_values


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_figure_lands_in_the_executed_notebook(name):
    values = notebook_values(name)
    created, images = values["__figures_created__"], values["__images__"]
    assert created > 0, f"{name} draws no figure at all"
    assert images == created, f"{name}: {created} figures created, {images} images in the executed notebook"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_solution_cell_prints_its_checks_success_line(name):
    """A solution turned back into its stub (or a check that no longer runs) fails here, naming the cell."""
    values = notebook_values(name)
    assert values["__solutions__"] > 0, f"{name} has no solution cell"
    assert not values["__solution_failures__"], f"{name}: " + "; ".join(values["__solution_failures__"])
