"""specenh.frontends"""
