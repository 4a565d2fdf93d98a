#!/usr/bin/python3
"""A consumer in another language for warren's amqp-terminate tests: Python's pika, which has
no automatic recovery. Consumes QUEUE through warren with prefetch 50 and manual acks,
prints `msg <body>` for each delivery (flushed), and `closed <reason>` then exits 1 if its
connection ever ends. Usage: pika_consumer.py PORT QUEUE CONNECTION_NAME"""
import sys

import pika

port, queue, name = int(sys.argv[1]), sys.argv[2], sys.argv[3]
params = pika.ConnectionParameters(
    host="127.0.0.1",
    port=port,
    heartbeat=10,
    client_properties={"connection_name": name},
)
try:
    conn = pika.BlockingConnection(params)
    ch = conn.channel()
    ch.basic_qos(prefetch_count=50)

    def on_message(channel, method, properties, body):
        print("msg", body.decode(), flush=True)
        channel.basic_ack(delivery_tag=method.delivery_tag)

    ch.basic_consume(queue=queue, on_message_callback=on_message)
    print("consuming", flush=True)
    ch.start_consuming()
    print("closed consuming stopped", flush=True)
except Exception as e:  # any end of the connection is what the test looks for
    print("closed", repr(e), flush=True)
sys.exit(1)
