"""The ParaView files of a run read back with VTK's own readers (the `vtk`
wheel): point and cell counts, the arrays and their values against the
CSVs, and the times of the .pvd series. VTK's Python wheel has no .pvd
reader (that is ParaView's), so the collection is parsed with VTK's own XML
parser and every file it names is read with the reader of its type."""

import csv
import numpy as np
import pytest

import vtk  # the [test] extra: these tests must run, never skip
from vtk.util.numpy_support import vtk_to_numpy

import jko

SCENARIO = """
dimension = 2
time_step = 0.01
steps = 4
output_every = 2
seed = 5
[coupling]
strength = 1.0
method = "direct"
softening = 0.1
[[species]]
name = "u"
charge = 1.0
particles = 120
potential = { kind = "quadratic", center = [0.0, 0.0], stiffness = 1.0 }
initial = { kind = "gaussian", mean = [0.2, 0.0], std = 0.5 }
[[species]]
name = "v"
charge = -1.0
particles = 80
potential = { kind = "quadratic", center = [0.0, 0.0], stiffness = 2.0 }
initial = { kind = "uniform", lower = [-1.0, -1.0], upper = [1.0, 1.0] }
[grid]
lower = [-3.0, -3.0]
upper = [3.0, 3.0]
cells = [12, 10]
[output]
vtk = true
"""


def pvd_entries(path):
    """(timestep, file) of every DataSet of a .pvd, by VTK's XML parser."""
    parser = vtk.vtkXMLDataParser()
    parser.SetFileName(str(path))
    assert parser.Parse() == 1, f"{path} is not well-formed XML for VTK"
    root = parser.GetRootElement()
    assert root.GetAttribute("type") == "Collection"
    coll = root.GetNestedElement(0)
    out = []
    for i in range(coll.GetNumberOfNestedElements()):
        e = coll.GetNestedElement(i)
        out.append((float(e.GetAttribute("timestep")), e.GetAttribute("file")))
    return out


def csv_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vtk")
    s = jko.Scenario.from_toml(SCENARIO)
    jko.run(s, str(root / "particles"))
    jko.eulerian(s, str(root / "grid"))
    return root


def test_particle_series_reads_back_with_vtk(runs):
    d = runs / "particles"
    entries = pvd_entries(d / "vtk" / "particles.pvd")
    assert [t for t, _ in entries] == [0.0, 0.02, 0.04]
    rows = csv_rows(d / "particles.csv")
    for (t, name), step in zip(entries, [0, 2, 4]):
        r = vtk.vtkXMLPolyDataReader()
        r.SetFileName(str(d / "vtk" / name))
        r.Update()
        assert r.GetErrorCode() == 0
        out = r.GetOutput()
        mine = [row for row in rows if int(row["step"]) == step]
        assert out.GetNumberOfPoints() == len(mine) == 200
        assert out.GetNumberOfVerts() == 200
        pd = out.GetPointData()
        names = sorted(pd.GetArrayName(i) for i in range(pd.GetNumberOfArrays()))
        assert names == ["density", "id", "species", "weight"]
        pts = vtk_to_numpy(out.GetPoints().GetData())
        np.testing.assert_array_equal(pts[:, 0], [float(row["x"]) for row in mine])
        np.testing.assert_array_equal(pts[:, 1], [float(row["y"]) for row in mine])
        np.testing.assert_array_equal(pts[:, 2], 0.0)
        for col in ["density", "weight", "id"]:
            np.testing.assert_array_equal(
                vtk_to_numpy(pd.GetArray(col)), [float(row[col]) for row in mine]
            )
        species = vtk_to_numpy(pd.GetArray("species"))
        fd = out.GetFieldData()
        names = fd.GetAbstractArray("species_names")
        labels = [names.GetValue(int(k)) for k in species]
        assert labels == [row["species"] for row in mine]
        assert vtk_to_numpy(fd.GetArray("TimeValue"))[0] == t


def test_grid_series_reads_back_with_vtk(runs):
    d = runs / "grid"
    entries = pvd_entries(d / "vtk" / "density.pvd")
    assert [t for t, _ in entries] == [0.0, 0.02, 0.04]
    rows = csv_rows(d / "density.csv")
    for (t, name), step in zip(entries, [0, 2, 4]):
        r = vtk.vtkXMLImageDataReader()
        r.SetFileName(str(d / "vtk" / name))
        r.Update()
        img = r.GetOutput()
        assert img.GetNumberOfCells() == 120
        assert img.GetDimensions() == (13, 11, 1)
        np.testing.assert_allclose(img.GetOrigin(), (-3.0, -3.0, 0.0))
        np.testing.assert_allclose(img.GetSpacing()[:2], (0.5, 0.6))
        cd = img.GetCellData()
        for sp in ["u", "v"]:
            want = [
                float(row["density"])
                for row in rows
                if int(row["step"]) == step and row["species"] == sp
            ]
            np.testing.assert_array_equal(vtk_to_numpy(cd.GetArray(sp)), want)
        # VTK's own geometry puts cell 13 (i = 1, j = 1) at the CSV row's center.
        center = [0.0] * 3
        weights = [0.0] * 8
        img.GetCell(13).EvaluateLocation(vtk.reference(0), [0.5, 0.5, 0.0], center, weights)
        row13 = [row for row in rows if int(row["step"]) == step and row["species"] == "u"][13]
        np.testing.assert_allclose(
            center[:2], (float(row13["x"]), float(row13["y"])), rtol=1e-12
        )
