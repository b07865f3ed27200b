"""specenh.vocoder"""
