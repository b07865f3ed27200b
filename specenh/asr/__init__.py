"""specenh.asr"""
