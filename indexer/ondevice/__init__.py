"""The on-device check: the files a browser needs to find, align and embed a face itself.

The browser runs the same three steps as the server (find the faces, align the chosen one as dlib
does, embed it with dlib's ResNet) in onnxruntime-web, and sends only the 128 numbers. This package
builds what it runs, at install time, from pinned npm packages and the dlib weights:

- ``faceapi``: face-api's TF.js face detector and 68-point landmark net rebuilt as ONNX graphs;
- ``assets``: the folder the service serves (runtime files, the three models, a manifest).
"""
