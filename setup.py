"""pip install -e .[cpu,test]   (on a GPU machine: .[gpu]; Kaggle images already have TensorFlow)."""
from setuptools import find_packages, setup

setup(
    name="kaggle-audio-doodle-kit",
    version="0.3.0",
    description="Competition kit: Freesound Audio Tagging 2019 and Quick, Draw! with TensorFlow/Keras 3",
    packages=find_packages(include=["src", "src.*"]),
    package_data={"src.ship": ["kaggle_image.txt"]},     # Kaggle's package versions (kernels check)
    python_requires=">=3.10",
    install_requires=[
        # TensorFlow comes from an extra: 'tensorflow-cpu' and 'tensorflow' are different
        # distributions of the same package, and pip cannot express "either".
        "keras>=3.0",
        "librosa>=0.10",
        "soundfile>=0.12",
        "numpy>=1.24",
        "pandas>=2.0",
        "scikit-learn>=1.3",
        "threadpoolctl>=3.0",       # one BLAS thread per feature worker (also a scikit-learn dependency)
        "iterative-stratification>=0.1.7",
        "tqdm>=4.60",
        "matplotlib>=3.7",
    ],
    extras_require={
        "cpu": ["tensorflow-cpu>=2.16"],
        "gpu": ["tensorflow[and-cuda]>=2.16"],
        "kaggle": ["kaggle>=1.6", "six"],        # kaggle 2.2.5 imports six without declaring it
        "test": ["pytest>=7"],
    },
)
