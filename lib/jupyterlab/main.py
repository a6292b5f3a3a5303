"""Serve the workbook's JupyterLab front end (built into build/ by webpack.config.js).

A LabServerApp, as in JupyterLab's examples/app (tag v4.5.10); it runs on Debian 12's
python3-jupyter-server 1.23 and python3-jupyterlab-server 2.16. Started by `npm start`
(lib/cli/start.ts) with /usr/bin/python3; every jupyter_server option works, e.g.
`--ServerApp.token=... --ServerApp.port=8899 --no-browser`.

User settings and workspaces live outside build/ (so a rebuild keeps them): in the project's
.jupyter/lab/ (git-ignored).
"""
import json
import os

from jupyterlab_server import LabServerApp

HERE = os.path.dirname(os.path.abspath(__file__))
BUILD = os.path.join(HERE, "build")
# User settings and workspaces: the project's .jupyter/lab/ ($SOFTMOE_LAB_DIR for another place,
# e.g. a test's private folder).
USER_DIR = os.environ.get("SOFTMOE_LAB_DIR") or os.path.join(HERE, "..", "..", ".jupyter", "lab")

# Config files on disk (~/.jupyter, /etc/jupyter) are for the user's own Jupyter, not this app.
os.environ["JUPYTER_NO_CONFIG"] = "1"

with open(os.path.join(HERE, "package.json"), encoding="utf-8") as f:
    VERSION = json.load(f)["version"]


class WorkbookLab(LabServerApp):
    name = __name__
    app_name = "JupyterLab"
    app_version = VERSION
    extension_url = "/lab"
    default_url = "/lab"
    load_other_extensions = False
    static_dir = BUILD
    schemas_dir = os.path.join(BUILD, "schemas")
    themes_dir = os.path.join(BUILD, "themes")
    app_settings_dir = os.path.join(BUILD, "application_settings")
    templates_dir = os.path.join(HERE, "templates")
    user_settings_dir = os.path.abspath(os.path.join(USER_DIR, "user-settings"))
    workspaces_dir = os.path.abspath(os.path.join(USER_DIR, "workspaces"))

    def initialize_settings(self):
        super().initialize_settings()
        # No terminal plugin in this front end.
        self.serverapp.web_app.settings["terminals_available"] = False


def _jupyter_server_extension_points():
    return [{"module": __name__, "app": WorkbookLab}]


if __name__ == "__main__":
    WorkbookLab.launch_instance()
