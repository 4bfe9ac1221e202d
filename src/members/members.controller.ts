import {
  applyDecorators,
  Controller,
  Delete,
  Get,
  HttpCode,
  MethodNotAllowedException,
  Param,
  Put,
  Req,
  Res,
} from '@nestjs/common';
import {
  ApiBody,
  ApiOperation,
  ApiParam,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import type { Request, Response } from 'express';
import { readJsonBody } from '../common/read-json-body.js';
import { contextOf } from '../common/request-context.accessor.js';
import { MembersService } from './members.service.js';

/** OpenAPI: the refusals shared by both ways of adding members. */
const ApiMembershipChangeErrors = () =>
  applyDecorators(
    ApiResponse({ status: 401, description: 'Caller has no tenant' }),
    ApiResponse({ status: 403, description: 'Denied by policy' }),
    ApiResponse({
      status: 404,
      description: 'Image not visible, deleted, or not sharable by the caller',
    }),
    ApiResponse({
      status: 413,
      description: 'More members than {{IMAGE_MEMBER_QUOTA}} (negative: unlimited)',
    }),
  );

/**
 * Glance v1 image sharing: /images/{id}/members and /shared-images/{tenant}.
 * Policy actions are enforced by the service, after the body is parsed and
 * the caller is known to be authenticated, in Glance's order.
 */
@ApiTags('members')
@Controller('v1')
export class MembersController {
  constructor(private readonly members: MembersService) {}

  @Get('images/:imageId/members')
  @ApiOperation({
    summary:
      'List the members of an image (policy get_members). The owner and admins see all; a member sees only its own membership.',
  })
  @ApiParam({ name: 'imageId' })
  @ApiResponse({
    status: 200,
    description: '{"members": [{"member_id": "...", "can_share": false}]}',
  })
  @ApiResponse({ status: 403, description: 'Denied by policy' })
  @ApiResponse({
    status: 404,
    description: 'No such image visible to the caller, or deleted',
  })
  async index(@Req() req: Request, @Param('imageId') imageId: string) {
    const members = await this.members.list(contextOf(req), imageId);
    return { members };
  }

  @Put('images/:imageId/members')
  @HttpCode(204)
  @ApiOperation({
    summary:
      'Replace the members of an image (policy modify_member). Listed members without can_share keep theirs; new ones default to false.',
  })
  @ApiParam({ name: 'imageId' })
  @ApiBody({
    schema: {
      type: 'object',
      required: ['memberships'],
      properties: {
        memberships: {
          type: 'array',
          items: {
            type: 'object',
            required: ['member_id'],
            properties: {
              member_id: { type: 'string' },
              can_share: { type: 'boolean' },
            },
          },
        },
      },
    },
  })
  @ApiResponse({ status: 204, description: 'Replaced' })
  @ApiResponse({
    status: 400,
    description: 'Malformed JSON or membership list',
  })
  @ApiMembershipChangeErrors()
  async replace(
    @Req() req: Request,
    @Param('imageId') imageId: string,
  ): Promise<void> {
    const body = await readJsonBody(req);
    await this.members.replace(contextOf(req), imageId, body);
  }

  @Get('images/:imageId/members/:member')
  @ApiOperation({ summary: 'Not supported by Glance v1: always 405' })
  @ApiParam({ name: 'imageId' })
  @ApiParam({ name: 'member' })
  @ApiResponse({ status: 405, description: 'Method not allowed' })
  show(@Res({ passthrough: true }) res: Response): never {
    res.setHeader('Allow', 'PUT, DELETE');
    throw new MethodNotAllowedException(
      'The request method is not allowed for this resource.',
    );
  }

  @Put('images/:imageId/members/:member')
  @HttpCode(204)
  @ApiOperation({
    summary:
      'Share the image with a tenant, or change its can_share (policy modify_member). Without can_share an existing member keeps its flag.',
  })
  @ApiParam({ name: 'imageId' })
  @ApiParam({ name: 'member', description: 'Tenant to share with' })
  @ApiBody({
    required: false,
    schema: {
      type: 'object',
      properties: {
        member: {
          type: 'object',
          properties: { can_share: { type: 'boolean' } },
        },
      },
    },
  })
  @ApiResponse({ status: 204, description: 'Added or updated' })
  @ApiResponse({ status: 400, description: 'Malformed JSON or body' })
  @ApiMembershipChangeErrors()
  async put(
    @Req() req: Request,
    @Param('imageId') imageId: string,
    @Param('member') member: string,
  ): Promise<void> {
    const body = await readJsonBody(req);
    await this.members.put(contextOf(req), imageId, member, body);
  }

  @Delete('images/:imageId/members/:member')
  @HttpCode(204)
  @ApiOperation({
    summary: 'Stop sharing the image with a tenant (policy delete_member)',
  })
  @ApiParam({ name: 'imageId' })
  @ApiParam({ name: 'member' })
  @ApiResponse({ status: 204, description: 'Removed' })
  @ApiResponse({ status: 401, description: 'Caller has no tenant' })
  @ApiResponse({ status: 403, description: 'Denied by policy' })
  @ApiResponse({
    status: 404,
    description:
      'Image not visible, deleted or not sharable by the caller; or no such membership',
  })
  async remove(
    @Req() req: Request,
    @Param('imageId') imageId: string,
    @Param('member') member: string,
  ): Promise<void> {
    await this.members.remove(contextOf(req), imageId, member);
  }

  @Get('shared-images/:tenant')
  @ApiOperation({
    summary:
      'Images shared with a tenant. Admins see all; others see the memberships of images they own, or their own.',
  })
  @ApiParam({ name: 'tenant' })
  @ApiResponse({
    status: 200,
    description: '{"shared_images": [{"image_id": "...", "can_share": false}]}',
  })
  async sharedImages(@Req() req: Request, @Param('tenant') tenant: string) {
    return {
      shared_images: await this.members.sharedWith(contextOf(req), tenant),
    };
  }
}
