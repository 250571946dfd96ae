"""The running controller: the informer store, the work queue, one reconciler per kind, Events and metrics."""
