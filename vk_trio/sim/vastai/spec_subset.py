"""The operations of Vast.ai's OpenAPI document that the simulator serves.

Generated from shared/specs/vastai.openapi.yaml by
``python -m vk_trio.sim.vastai.regenerate shared/specs/vastai.openapi.yaml``
(prose dropped); do not edit by hand: the errata live in validation.py.
tests/sim/vastai/test_validation.py fails when it no longer matches the document.
It is a Python module rather than a data file so that the simulator works from the
single-file .pyz.
"""

from __future__ import annotations

import json
from typing import Any

SPEC_SUBSET: dict[str, Any] = json.loads(
    r"""
{
 "components": {
  "schemas": {
   "Error": {
    "properties": {
     "error": {
      "type": "string"
     },
     "msg": {
      "type": "string"
     },
     "success": {
      "type": "boolean"
     }
    },
    "type": "object"
   },
   "Instance": {
    "properties": {
     "actual_status": {
      "type": [
       "string",
       "null"
      ]
     },
     "bundle_id": {
      "type": "integer"
     },
     "bw_nvlink": {
      "format": "float",
      "type": "number"
     },
     "client_run_time": {
      "format": "float",
      "type": "number"
     },
     "cpu_arch": {
      "type": "string"
     },
     "cpu_cores": {
      "type": "integer"
     },
     "cpu_cores_effective": {
      "format": "float",
      "type": "number"
     },
     "cpu_name": {
      "type": "string"
     },
     "cpu_ram": {
      "type": "integer"
     },
     "cpu_util": {
      "format": "float",
      "type": "number"
     },
     "credit_balance": {
      "type": [
       "number",
       "null"
      ]
     },
     "credit_discount": {
      "type": [
       "number",
       "null"
      ]
     },
     "credit_discount_max": {
      "type": "number"
     },
     "cur_state": {
      "type": "string"
     },
     "direct_port_count": {
      "type": "integer"
     },
     "direct_port_end": {
      "type": "integer"
     },
     "direct_port_start": {
      "type": "integer"
     },
     "disk_bw": {
      "format": "float",
      "type": "number"
     },
     "disk_name": {
      "type": "string"
     },
     "disk_space": {
      "format": "float",
      "type": "number"
     },
     "disk_usage": {
      "format": "float",
      "type": "number"
     },
     "disk_util": {
      "format": "float",
      "type": "number"
     },
     "dlperf": {
      "format": "float",
      "type": "number"
     },
     "dlperf_per_dphtotal": {
      "format": "float",
      "type": "number"
     },
     "dph_base": {
      "format": "float",
      "type": "number"
     },
     "dph_total": {
      "format": "float",
      "type": "number"
     },
     "duration": {
      "format": "float",
      "type": "number"
     },
     "end_date": {
      "format": "float",
      "type": "number"
     },
     "external": {
      "type": "boolean"
     },
     "extra_env": {
      "items": {
       "type": "string"
      },
      "type": "array"
     },
     "flops_per_dphtotal": {
      "format": "float",
      "type": "number"
     },
     "geolocation": {
      "type": "string"
     },
     "gpu_arch": {
      "type": "string"
     },
     "gpu_frac": {
      "format": "float",
      "type": "number"
     },
     "gpu_lanes": {
      "type": "integer"
     },
     "gpu_mem_bw": {
      "format": "float",
      "type": "number"
     },
     "gpu_name": {
      "type": "string"
     },
     "gpu_ram": {
      "type": "integer"
     },
     "gpu_temp": {
      "type": [
       "number",
       "null"
      ]
     },
     "gpu_totalram": {
      "type": "integer"
     },
     "gpu_util": {
      "type": [
       "number",
       "null"
      ]
     },
     "host_id": {
      "type": "integer"
     },
     "host_run_time": {
      "format": "float",
      "type": "number"
     },
     "hosting_type": {
      "type": "integer"
     },
     "id": {
      "type": "integer"
     },
     "image_args": {
      "items": {
       "type": "string"
      },
      "type": "array"
     },
     "image_runtype": {
      "type": "string"
     },
     "image_uuid": {
      "type": "string"
     },
     "instance": {
      "type": "object"
     },
     "intended_status": {
      "type": "string"
     },
     "is_bid": {
      "type": "boolean"
     },
     "jupyter_token": {
      "type": "string"
     },
     "label": {
      "type": [
       "string",
       "null"
      ]
     },
     "local_ipaddrs": {
      "type": "string"
     },
     "logo": {
      "type": "string"
     },
     "machine_dir_ssh_port": {
      "type": "integer"
     },
     "machine_id": {
      "type": "integer"
     },
     "mem_limit": {
      "type": [
       "number",
       "null"
      ]
     },
     "mem_usage": {
      "type": [
       "number",
       "null"
      ]
     },
     "min_bid": {
      "format": "float",
      "type": "number"
     },
     "mobo_name": {
      "type": "string"
     },
     "next_state": {
      "type": "string"
     },
     "num_gpus": {
      "type": "integer"
     },
     "onstart": {
      "type": [
       "string",
       "null"
      ]
     },
     "os_version": {
      "type": "string"
     },
     "pci_gen": {
      "format": "float",
      "type": "number"
     },
     "pcie_bw": {
      "format": "float",
      "type": "number"
     },
     "ports": {
      "items": {
       "type": "integer"
      },
      "type": "array"
     },
     "public_ipaddr": {
      "type": "string"
     },
     "reliability2": {
      "format": "float",
      "type": "number"
     },
     "rentable": {
      "type": "boolean"
     },
     "score": {
      "format": "float",
      "type": "number"
     },
     "search": {
      "type": "object"
     },
     "ssh_host": {
      "type": "string"
     },
     "ssh_idx": {
      "type": "string"
     },
     "ssh_port": {
      "type": "integer"
     },
     "start_date": {
      "format": "float",
      "type": "number"
     },
     "static_ip": {
      "type": "boolean"
     },
     "status_msg": {
      "type": [
       "string",
       "null"
      ]
     },
     "storage_cost": {
      "format": "float",
      "type": "number"
     },
     "storage_total_cost": {
      "format": "float",
      "type": "number"
     },
     "template_hash_id": {
      "type": [
       "string",
       "null"
      ]
     },
     "template_id": {
      "type": [
       "integer",
       "null"
      ]
     },
     "template_name": {
      "type": [
       "string",
       "null"
      ]
     },
     "time_remaining": {
      "type": "string"
     },
     "time_remaining_isbid": {
      "type": "string"
     },
     "total_flops": {
      "format": "float",
      "type": "number"
     },
     "uptime_mins": {
      "type": [
       "number",
       "null"
      ]
     },
     "verification": {
      "type": "string"
     },
     "vmem_usage": {
      "type": [
       "number",
       "null"
      ]
     },
     "vram_costperhour": {
      "format": "float",
      "type": "number"
     },
     "webpage": {
      "type": [
       "string",
       "null"
      ]
     }
    },
    "type": "object"
   },
   "SimpleBooleanSuccessResponse": {
    "properties": {
     "success": {
      "type": "boolean"
     }
    },
    "type": "object"
   }
  }
 },
 "operations": {
  "createInstance": {
   "method": "put",
   "parameters": [
    {
     "in": "path",
     "name": "id",
     "required": true,
     "schema": {
      "type": "integer"
     }
    }
   ],
   "path": "/api/v0/asks/{id}",
   "requestBody": {
    "properties": {
     "args": {
      "items": {
       "type": "string"
      },
      "type": "array"
     },
     "args_str": {
      "type": "string"
     },
     "cancel_unavail": {
      "type": "boolean"
     },
     "disk": {
      "format": "float",
      "type": "number"
     },
     "env": {
      "type": "string"
     },
     "force": {
      "type": "boolean"
     },
     "image": {
      "type": "string"
     },
     "image_login": {
      "type": "string"
     },
     "jupyter_dir": {
      "type": "string"
     },
     "label": {
      "type": "string"
     },
     "lang_utf8": {
      "type": "boolean"
     },
     "onstart": {
      "type": "string"
     },
     "price": {
      "maximum": 128.0,
      "minimum": 0.001,
      "type": "number"
     },
     "python_utf8": {
      "type": "boolean"
     },
     "runtype": {
      "enum": [
       "ssh",
       "jupyter",
       "args",
       "ssh_proxy",
       "ssh_direct",
       "jupyter_proxy",
       "jupyter_direct"
      ],
      "type": "string"
     },
     "target_state": {
      "enum": [
       "running",
       "stopped"
      ],
      "type": "string"
     },
     "template_hash_id": {
      "type": "string"
     },
     "use_jupyter_lab": {
      "type": "boolean"
     },
     "user": {
      "type": "string"
     },
     "vm": {
      "type": "boolean"
     },
     "volume_info": {
      "properties": {
       "create_new": {
        "type": "boolean"
       },
       "mount_path": {
        "type": "string"
       },
       "size": {
        "type": "integer"
       },
       "volume_id": {
        "type": "integer"
       }
      },
      "type": "object"
     }
    },
    "required": [
     "image"
    ],
    "type": "object"
   },
   "requestBodyRequired": true,
   "responses": {
    "200": {
     "properties": {
      "new_contract": {
       "type": "integer"
      },
      "success": {
       "type": "boolean"
      }
     },
     "type": "object"
    },
    "400": {
     "properties": {
      "ask_id": {
       "type": "integer"
      },
      "error": {
       "enum": [
        "invalid_args",
        "invalid_price",
        "no_ssh_key_for_vm"
       ],
       "type": "string"
      },
      "msg": {
       "type": "string"
      },
      "success": {
       "type": "boolean"
      }
     },
     "type": "object"
    },
    "401": {
     "$ref": "#/components/schemas/Error"
    },
    "403": {
     "properties": {
      "ask_id": {
       "type": "integer"
      },
      "error": {
       "type": "string"
      },
      "msg": {
       "type": "string"
      },
      "success": {
       "type": "boolean"
      }
     },
     "type": "object"
    },
    "404": {
     "properties": {
      "ask_id": {
       "type": "integer"
      },
      "error": {
       "type": "string"
      },
      "msg": {
       "type": "string"
      },
      "success": {
       "type": "boolean"
      }
     },
     "type": "object"
    },
    "410": {
     "properties": {
      "ask_id": {
       "type": "integer"
      },
      "error": {
       "type": "string"
      },
      "msg": {
       "type": "string"
      },
      "success": {
       "type": "boolean"
      }
     },
     "type": "object"
    },
    "429": {
     "properties": {
      "detail": {
       "type": "string"
      }
     },
     "type": "object"
    }
   }
  },
  "destroyInstance": {
   "method": "delete",
   "parameters": [
    {
     "in": "path",
     "name": "id",
     "required": true,
     "schema": {
      "type": "integer"
     }
    }
   ],
   "path": "/api/v0/instances/{id}",
   "responses": {
    "200": {
     "properties": {
      "msg": {
       "type": "string"
      },
      "success": {
       "type": "boolean"
      }
     },
     "type": "object"
    },
    "400": {
     "properties": {
      "error": {
       "type": "string"
      },
      "msg": {
       "type": "string"
      },
      "success": {
       "type": "boolean"
      }
     },
     "type": "object"
    },
    "404": {
     "properties": {
      "error": {
       "type": "string"
      },
      "msg": {
       "type": "string"
      },
      "success": {
       "type": "boolean"
      }
     },
     "type": "object"
    },
    "429": {
     "properties": {
      "error": {
       "type": "string"
      },
      "msg": {
       "type": "string"
      },
      "success": {
       "type": "boolean"
      }
     },
     "type": "object"
    }
   }
  },
  "manageInstance": {
   "method": "put",
   "parameters": [
    {
     "in": "path",
     "name": "id",
     "required": true,
     "schema": {
      "type": "integer"
     }
    }
   ],
   "path": "/api/v0/instances/{id}",
   "requestBody": {
    "properties": {
     "label": {
      "maxLength": 1024,
      "type": "string"
     },
     "state": {
      "enum": [
       "stopped",
       "running"
      ],
      "type": "string"
     }
    },
    "type": "object"
   },
   "requestBodyRequired": true,
   "responses": {
    "200": {
     "$ref": "#/components/schemas/SimpleBooleanSuccessResponse"
    },
    "400": {
     "$ref": "#/components/schemas/Error"
    },
    "401": {
     "$ref": "#/components/schemas/Error"
    },
    "404": {
     "$ref": "#/components/schemas/Error"
    },
    "429": {
     "properties": {
      "detail": {
       "type": "string"
      }
     },
     "type": "object"
    }
   }
  },
  "searchOffers": {
   "method": "post",
   "path": "/api/v0/bundles",
   "requestBody": {
    "properties": {
     "allocated_storage": {
      "type": "number"
     },
     "bw_nvlink": {
      "type": "object"
     },
     "compute_cap": {
      "type": "object"
     },
     "cpu_arch": {
      "type": "object"
     },
     "cpu_cores": {
      "type": "object"
     },
     "cpu_cores_effective": {
      "type": "object"
     },
     "cpu_ghz": {
      "type": "object"
     },
     "cpu_ram": {
      "type": "object"
     },
     "cuda_max_good": {
      "type": "object"
     },
     "datacenter": {
      "type": "object"
     },
     "direct_port_count": {
      "type": "object"
     },
     "disk_bw": {
      "type": "object"
     },
     "disk_space": {
      "type": "object"
     },
     "dlperf": {
      "type": "object"
     },
     "dlperf_per_dphtotal": {
      "type": "object"
     },
     "dph_total": {
      "type": "object"
     },
     "driver_version": {
      "type": "object"
     },
     "duration": {
      "type": "object"
     },
     "external": {
      "type": "object"
     },
     "flops_per_dphtotal": {
      "type": "object"
     },
     "geolocation": {
      "properties": {
       "in": {
        "items": {
         "type": "string"
        },
        "type": "array"
       }
      },
      "type": "object"
     },
     "gpu_arch": {
      "type": "object"
     },
     "gpu_display_active": {
      "type": "object"
     },
     "gpu_frac": {
      "type": "object"
     },
     "gpu_max_power": {
      "type": "object"
     },
     "gpu_max_temp": {
      "type": "object"
     },
     "gpu_mem_bw": {
      "type": "object"
     },
     "gpu_name": {
      "properties": {
       "in": {
        "items": {
         "type": "string"
        },
        "type": "array"
       }
      },
      "type": "object"
     },
     "gpu_ram": {
      "type": "object"
     },
     "gpu_total_ram": {
      "type": "object"
     },
     "has_avx": {
      "type": "object"
     },
     "host_id": {
      "type": "object"
     },
     "id": {
      "type": "object"
     },
     "inet_down": {
      "type": "object"
     },
     "inet_down_cost": {
      "type": "object"
     },
     "inet_up": {
      "type": "object"
     },
     "inet_up_cost": {
      "type": "object"
     },
     "limit": {
      "type": "integer"
     },
     "machine_id": {
      "type": "object"
     },
     "min_bid": {
      "type": "object"
     },
     "mobo_name": {
      "type": "object"
     },
     "num_gpus": {
      "properties": {
       "in": {
        "items": {
         "type": "integer"
        },
        "type": "array"
       }
      },
      "type": "object"
     },
     "order": {
      "items": {
       "items": {
        "type": "string"
       },
       "type": "array"
      },
      "maxItems": 2,
      "minItems": 2,
      "type": "array"
     },
     "os_version": {
      "type": "object"
     },
     "pci_gen": {
      "type": "object"
     },
     "pcie_bw": {
      "type": "object"
     },
     "reliability": {
      "type": "object"
     },
     "rentable": {
      "properties": {
       "eq": {
        "type": "boolean"
       }
      },
      "type": "object"
     },
     "rented": {
      "properties": {
       "eq": {
        "type": "boolean"
       }
      },
      "type": "object"
     },
     "static_ip": {
      "type": "object"
     },
     "storage_cost": {
      "type": "object"
     },
     "total_flops": {
      "type": "object"
     },
     "type": {
      "enum": [
       "ondemand",
       "bid",
       "reserved"
      ],
      "type": "string"
     },
     "ubuntu_version": {
      "type": "object"
     },
     "verification": {
      "type": "object"
     },
     "verified": {
      "properties": {
       "eq": {
        "type": "boolean"
       }
      },
      "type": "object"
     },
     "vms_enabled": {
      "type": "object"
     }
    },
    "type": "object"
   },
   "requestBodyRequired": true,
   "responses": {
    "200": {
     "properties": {
      "offers": {
       "items": {
        "additionalProperties": true,
        "type": "object"
       },
       "type": "array"
      }
     },
     "type": "object"
    },
    "400": {
     "properties": {
      "error": {
       "type": "string"
      },
      "msg": {
       "type": "string"
      }
     },
     "type": "object"
    },
    "404": {
     "properties": {
      "error": {
       "type": "string"
      },
      "msg": {
       "type": "string"
      }
     },
     "type": "object"
    }
   }
  },
  "showInstance": {
   "method": "get",
   "parameters": [
    {
     "in": "path",
     "name": "id",
     "required": true,
     "schema": {
      "type": "integer"
     }
    }
   ],
   "path": "/api/v0/instances/{id}",
   "responses": {
    "200": {
     "properties": {
      "instances": {
       "$ref": "#/components/schemas/Instance"
      }
     },
     "type": "object"
    },
    "400": {
     "$ref": "#/components/schemas/Error"
    },
    "401": {
     "$ref": "#/components/schemas/Error"
    },
    "429": {
     "properties": {
      "detail": {
       "type": "string"
      }
     },
     "type": "object"
    }
   }
  },
  "showInstances": {
   "method": "get",
   "parameters": [
    {
     "in": "query",
     "name": "limit",
     "required": false,
     "schema": {
      "maximum": 25,
      "type": "integer"
     }
    },
    {
     "in": "query",
     "name": "after_token",
     "required": false,
     "schema": {
      "type": "string"
     }
    },
    {
     "in": "query",
     "name": "order_by",
     "required": false,
     "schema": {
      "type": "string"
     }
    },
    {
     "in": "query",
     "name": "select_cols",
     "required": false,
     "schema": {
      "type": "string"
     }
    },
    {
     "in": "query",
     "name": "select_filters",
     "required": false,
     "schema": {
      "type": "string"
     }
    }
   ],
   "path": "/api/v1/instances",
   "responses": {
    "200": {
     "properties": {
      "instances": {
       "items": {
        "properties": {
         "actual_status": {
          "type": [
           "string",
           "null"
          ]
         },
         "bw_nvlink": {
          "format": "float",
          "type": "number"
         },
         "client_run_time": {
          "format": "float",
          "type": "number"
         },
         "country_code": {
          "type": [
           "string",
           "null"
          ]
         },
         "cpu_arch": {
          "type": "string"
         },
         "cpu_cores": {
          "type": "integer"
         },
         "cpu_cores_effective": {
          "format": "float",
          "type": "number"
         },
         "cpu_name": {
          "type": "string"
         },
         "cpu_ram": {
          "type": "integer"
         },
         "cpu_util": {
          "format": "float",
          "type": "number"
         },
         "credit_balance": {
          "type": [
           "number",
           "null"
          ]
         },
         "credit_discount": {
          "type": [
           "number",
           "null"
          ]
         },
         "credit_discount_max": {
          "type": [
           "number",
           "null"
          ]
         },
         "cur_state": {
          "type": "string"
         },
         "direct_port_count": {
          "type": "integer"
         },
         "direct_port_end": {
          "type": "integer"
         },
         "direct_port_start": {
          "type": "integer"
         },
         "disk_bw": {
          "format": "float",
          "type": "number"
         },
         "disk_name": {
          "type": "string"
         },
         "disk_space": {
          "format": "float",
          "type": "number"
         },
         "disk_usage": {
          "format": "float",
          "type": "number"
         },
         "disk_util": {
          "format": "float",
          "type": "number"
         },
         "dlperf": {
          "type": [
           "number",
           "null"
          ]
         },
         "dlperf_per_dphtotal": {
          "type": [
           "number",
           "null"
          ]
         },
         "dph_base": {
          "format": "float",
          "type": "number"
         },
         "dph_total": {
          "format": "float",
          "type": "number"
         },
         "duration": {
          "format": "float",
          "type": "number"
         },
         "end_date": {
          "format": "float",
          "type": "number"
         },
         "external": {
          "type": "boolean"
         },
         "extra_env": {
          "items": {
           "items": {
            "type": "string"
           },
           "type": "array"
          },
          "type": "array"
         },
         "flops_per_dphtotal": {
          "format": "float",
          "type": "number"
         },
         "geolocation": {
          "type": "string"
         },
         "gpu_arch": {
          "type": "string"
         },
         "gpu_frac": {
          "format": "float",
          "type": "number"
         },
         "gpu_lanes": {
          "type": "integer"
         },
         "gpu_mem_bw": {
          "format": "float",
          "type": "number"
         },
         "gpu_name": {
          "type": "string"
         },
         "gpu_ram": {
          "type": "integer"
         },
         "gpu_temp": {
          "type": [
           "number",
           "null"
          ]
         },
         "gpu_totalram": {
          "type": "integer"
         },
         "gpu_util": {
          "type": [
           "number",
           "null"
          ]
         },
         "host_id": {
          "type": "integer"
         },
         "host_run_time": {
          "format": "float",
          "type": "number"
         },
         "id": {
          "type": "integer"
         },
         "image_args": {
          "items": {
           "type": "string"
          },
          "type": "array"
         },
         "image_runtype": {
          "type": "string"
         },
         "image_uuid": {
          "type": "string"
         },
         "instance": {
          "type": "object"
         },
         "intended_status": {
          "type": "string"
         },
         "is_bid": {
          "type": "boolean"
         },
         "jupyter_token": {
          "type": "string"
         },
         "label": {
          "type": [
           "string",
           "null"
          ]
         },
         "local_ipaddrs": {
          "type": "string"
         },
         "machine_dir_ssh_port": {
          "type": "integer"
         },
         "machine_id": {
          "type": "integer"
         },
         "mem_limit": {
          "type": [
           "number",
           "null"
          ]
         },
         "mem_usage": {
          "type": [
           "number",
           "null"
          ]
         },
         "min_bid": {
          "format": "float",
          "type": "number"
         },
         "mobo_name": {
          "type": "string"
         },
         "next_state": {
          "type": "string"
         },
         "num_gpus": {
          "type": "integer"
         },
         "onstart": {
          "type": "string"
         },
         "os_version": {
          "type": [
           "string",
           "null"
          ]
         },
         "pci_gen": {
          "format": "float",
          "type": "number"
         },
         "pcie_bw": {
          "format": "float",
          "type": "number"
         },
         "ports": {
          "additionalProperties": {
           "items": {
            "properties": {
             "HostIp": {
              "type": "string"
             },
             "HostPort": {
              "type": "string"
             }
            },
            "type": "object"
           },
           "type": "array"
          },
          "type": [
           "object",
           "null"
          ]
         },
         "public_ipaddr": {
          "type": "string"
         },
         "reliability2": {
          "format": "float",
          "type": "number"
         },
         "rentable": {
          "type": "boolean"
         },
         "score": {
          "type": [
           "number",
           "null"
          ]
         },
         "search": {
          "type": "object"
         },
         "ssh_host": {
          "type": "string"
         },
         "ssh_idx": {
          "type": "string"
         },
         "ssh_port": {
          "type": "integer"
         },
         "start_date": {
          "format": "float",
          "type": "number"
         },
         "static_ip": {
          "type": "boolean"
         },
         "status_msg": {
          "type": [
           "string",
           "null"
          ]
         },
         "storage_cost": {
          "format": "float",
          "type": "number"
         },
         "storage_total_cost": {
          "format": "float",
          "type": "number"
         },
         "template_hash_id": {
          "type": [
           "string",
           "null"
          ]
         },
         "template_id": {
          "type": [
           "integer",
           "null"
          ]
         },
         "template_name": {
          "type": [
           "string",
           "null"
          ]
         },
         "time_remaining": {
          "type": "string"
         },
         "time_remaining_isbid": {
          "type": "string"
         },
         "total_flops": {
          "format": "float",
          "type": "number"
         },
         "uptime_mins": {
          "type": [
           "number",
           "null"
          ]
         },
         "verification": {
          "type": "string"
         },
         "vmem_usage": {
          "type": [
           "number",
           "null"
          ]
         },
         "volume_info": {
          "items": {
           "type": "object"
          },
          "type": "array"
         },
         "vram_costperhour": {
          "format": "float",
          "type": "number"
         },
         "webpage": {
          "type": [
           "string",
           "null"
          ]
         }
        },
        "type": "object"
       },
       "type": "array"
      },
      "instances_found": {
       "type": "integer"
      },
      "label_counts": {
       "type": "object"
      },
      "next_token": {
       "type": [
        "string",
        "null"
       ]
      },
      "success": {
       "type": "boolean"
      },
      "total_instances": {
       "type": "integer"
      }
     },
     "type": "object"
    },
    "400": {
     "properties": {
      "error": {
       "enum": [
        "invalid_request",
        "invalid_token"
       ],
       "type": "string"
      },
      "msg": {
       "type": "string"
      }
     },
     "type": "object"
    },
    "401": {
     "$ref": "#/components/schemas/Error"
    },
    "429": {
     "properties": {
      "detail": {
       "type": "string"
      }
     },
     "type": "object"
    }
   }
  },
  "showLogs": {
   "method": "put",
   "parameters": [
    {
     "in": "path",
     "name": "id",
     "required": true,
     "schema": {
      "type": "integer"
     }
    }
   ],
   "path": "/api/v0/instances/request_logs/{id}",
   "requestBody": {
    "properties": {
     "daemon_logs": {
      "enum": [
       "true"
      ],
      "type": "string"
     },
     "filter": {
      "type": "string"
     },
     "tail": {
      "type": "string"
     }
    },
    "type": "object"
   },
   "requestBodyRequired": false,
   "responses": {
    "200": {
     "properties": {
      "msg": {
       "type": "string"
      },
      "result_url": {
       "type": "string"
      },
      "success": {
       "type": "boolean"
      }
     },
     "type": "object"
    },
    "403": {
     "properties": {
      "error": {
       "type": "string"
      },
      "msg": {
       "type": "string"
      }
     },
     "type": "object"
    },
    "404": {
     "properties": {
      "error": {
       "type": "string"
      },
      "msg": {
       "type": "string"
      }
     },
     "type": "object"
    }
   }
  }
 }
}
"""
)
