"""The built-in demo capture: an articulated, textured figure that moves non-rigidly, ray cast into
a calibrated camera rig and written in the EasyMocap layout (``fourk4d-demo-scene``)."""
