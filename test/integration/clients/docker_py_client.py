#!/usr/bin/python3
# A docker-py (Debian 12's python3-docker) client of tsoverlay, run by
# test/integration/clients.test.ts against one lab host's dockerd:
#
#   docker_py_client.py up   SOCKET NETWORK SUBNET CONTAINER IP ALIAS IMAGE
#   docker_py_client.py down SOCKET NETWORK CONTAINER
#
# `up` creates a network with driver and IPAM driver tsoverlay and a subnet,
# a container on it with a network alias and a fixed IPv4 address (the
# low-level create_networking_config / create_endpoint_config), starts it and
# prints what docker-py's inspect calls report, as one JSON object. `down`
# removes the container and the network (whichever exist) and prints what it
# did. Every failure is printed as {"error": ...} with exit code 1.
import json
import sys

import docker
from docker.errors import NotFound

# a pid 1 that exits at once on SIGTERM (busybox sleep alone would ignore it)
SLEEPER = ['sh', '-c', 'trap "exit 0" TERM INT; sleep 86400 & wait']


def client(sock):
    # version='auto': whatever the engine speaks (20.10 or a newer one)
    return docker.DockerClient(base_url='unix://' + sock, version='auto', timeout=120)


def up(sock, net_name, subnet, cname, ip, alias, image):
    dc = client(sock)
    api = dc.api
    ipam = docker.types.IPAMConfig(driver='tsoverlay', pool_configs=[docker.types.IPAMPool(subnet=subnet)])
    net = dc.networks.create(net_name, driver='tsoverlay', ipam=ipam, check_duplicate=True)
    networking = api.create_networking_config({
        net_name: api.create_endpoint_config(ipv4_address=ip, aliases=[alias]),
    })
    host_config = api.create_host_config(network_mode=net_name)
    created = api.create_container(image, command=SLEEPER, name=cname, networking_config=networking,
                                   host_config=host_config)
    api.start(created['Id'])

    # what a user of docker-py looks at afterwards
    net.reload()
    container = dc.containers.get(created['Id'])
    endpoint = container.attrs['NetworkSettings']['Networks'][net_name]
    net_info = api.inspect_network(net.id)
    addrs = container.exec_run(['ip', '-4', 'addr', 'show'])
    return {
        'dockerPy': docker.__version__,
        'dockerPyFile': docker.__file__,
        'apiVersion': api.api_version,
        'network': {
            'id': net.id,
            'name': net.name,
            'driver': net.attrs['Driver'],
            'ipamDriver': net.attrs['IPAM']['Driver'],
            'subnets': [c.get('Subnet') for c in (net.attrs['IPAM']['Config'] or [])],
            'containers': sorted((net_info.get('Containers') or {}).keys()),
        },
        'container': {
            'id': container.id,
            'name': container.name,
            'status': container.status,
            'ipAddress': endpoint.get('IPAddress'),
            'ipamIPv4': (endpoint.get('IPAMConfig') or {}).get('IPv4Address'),
            'aliases': endpoint.get('Aliases') or [],
            'networks': sorted(container.attrs['NetworkSettings']['Networks'].keys()),
            'ipAddrShow': {'exitCode': addrs.exit_code, 'output': addrs.output.decode(errors='replace')},
        },
    }


def down(sock, net_name, cname):
    dc = client(sock)
    removed = []
    try:
        dc.containers.get(cname).remove(force=True)
        removed.append('container')
    except NotFound:
        pass
    try:
        dc.networks.get(net_name).remove()
        removed.append('network')
    except NotFound:
        pass
    left = [n.name for n in dc.networks.list(names=[net_name]) if n.name == net_name]
    return {'removed': removed, 'networksLeft': left}


def main(argv):
    try:
        if len(argv) == 9 and argv[1] == 'up':
            result = up(*argv[2:])
        elif len(argv) == 5 and argv[1] == 'down':
            result = down(*argv[2:])
        else:
            raise SystemExit('usage: docker_py_client.py up SOCKET NETWORK SUBNET CONTAINER IP ALIAS IMAGE'
                             ' | down SOCKET NETWORK CONTAINER')
    except docker.errors.DockerException as e:
        print(json.dumps({'error': '%s: %s' % (type(e).__name__, e)}))
        return 1
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
