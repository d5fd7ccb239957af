"""HQCNN Explorer: `streamlit run app.py`.

The entry point only names the pages (it runs before every page, so it imports nothing heavy);
each page is a script in pages/. The URL paths are fixed so that shared links keep working.
"""

import streamlit as st

import hqcnn  # noqa: F401  (first: pins torch's CPU kernels before any page starts torch; hqcnn/determinism.py)

st.set_page_config(page_title="HQCNN Explorer", page_icon="⚛️", layout="wide")

PAGES = [
    st.Page("pages/0_Home.py", title="Home", icon="🏠", default=True),
    st.Page("pages/1_Data.py", title="Data", icon="🩻", url_path="Data"),
    st.Page("pages/2_Circuit.py", title="Circuit", icon="⚛️", url_path="Circuit"),
    st.Page("pages/3_Train.py", title="Train", icon="🏋️", url_path="Train"),
    st.Page("pages/4_Explain.py", title="Explain", icon="🔍", url_path="Explain"),
    st.Page("pages/5_Experiments.py", title="Experiments", icon="🧪", url_path="Experiments"),
]
st.navigation(PAGES).run()
