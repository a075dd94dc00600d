"""TF Serving's config messages, for parsing the deployment files.

`ModelServerConfig` comes from the `tensorflow-serving-api` wheel. The
wheel (2.21) does not ship `session_bundle_config_pb2` (`BatchingParameters`)
nor `monitoring_config_pb2` (`MonitoringConfig`), so when they cannot be
imported, these two are built here from TF Serving's
`tensorflow_serving/servables/tensorflow/session_bundle_config.proto` and
`tensorflow_serving/config/monitoring_config.proto`, field for field (names,
numbers, types; the `BatchingParameters` fields 1-7), which is all that text
format parsing reads.
"""

import importlib

from google.protobuf import descriptor_pb2
from google.protobuf import descriptor_pool
from google.protobuf import message_factory
from google.protobuf import wrappers_pb2

FIELD = descriptor_pb2.FieldDescriptorProto


def _field(message, name, number, type_, type_name=None, repeated=False):
    field = message.field.add(
        name=name,
        number=number,
        type=type_,
        label=FIELD.LABEL_REPEATED if repeated else FIELD.LABEL_OPTIONAL,
    )
    if type_name:
        field.type_name = type_name


def _transcribed():
    pool = descriptor_pool.DescriptorPool()
    wrappers = descriptor_pb2.FileDescriptorProto()
    wrappers_pb2.DESCRIPTOR.CopyToProto(wrappers)
    pool.Add(wrappers)
    proto = descriptor_pb2.FileDescriptorProto(
        name="kmlc_tests/serving_configs.proto",
        package="tensorflow.serving",
        syntax="proto3",
        dependency=["google/protobuf/wrappers.proto"],
    )
    batching = proto.message_type.add(name="BatchingParameters")
    int64 = ".google.protobuf.Int64Value"
    for number, name in enumerate(
        (
            "max_batch_size",
            "batch_timeout_micros",
            "max_enqueued_batches",
            "num_batch_threads",
        ),
        start=1,
    ):
        _field(batching, name, number, FIELD.TYPE_MESSAGE, int64)
    _field(
        batching,
        "thread_pool_name",
        5,
        FIELD.TYPE_MESSAGE,
        ".google.protobuf.StringValue",
    )
    _field(batching, "allowed_batch_sizes", 6, FIELD.TYPE_INT64, repeated=True)
    _field(batching, "pad_variable_length_inputs", 7, FIELD.TYPE_BOOL)
    prometheus = proto.message_type.add(name="PrometheusConfig")
    _field(prometheus, "enable", 1, FIELD.TYPE_BOOL)
    _field(prometheus, "path", 2, FIELD.TYPE_STRING)
    monitoring = proto.message_type.add(name="MonitoringConfig")
    _field(
        monitoring,
        "prometheus_config",
        1,
        FIELD.TYPE_MESSAGE,
        ".tensorflow.serving.PrometheusConfig",
    )
    pool.Add(proto)
    return {
        name: message_factory.GetMessageClass(
            pool.FindMessageTypeByName(f"tensorflow.serving.{name}")
        )
        for name in ("BatchingParameters", "MonitoringConfig")
    }


def message_class(module, name):
    """TF Serving's `name` from `module`, or the transcription above."""
    try:
        return getattr(importlib.import_module(module), name)
    except ImportError:
        return _transcribed()[name]


def batching_parameters():
    return message_class(
        "tensorflow_serving.servables.tensorflow.session_bundle_config_pb2",
        "BatchingParameters",
    )


def monitoring_config():
    return message_class(
        "tensorflow_serving.config.monitoring_config_pb2", "MonitoringConfig"
    )
